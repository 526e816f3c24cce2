"""Pool the per-fold evaluations of ``mmcbm`` into one ``metrics.json`` (rule ``mmcbm_evaluate``).

Everything the figures and the claims table need is written here, with the per-patient
predictions of every arm and seed, so that the report pairs arms on the same patients
(out-of-fold predictions pooled over the folds) and the same seeds.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from reprolab.core.errors import DataError
from reprolab.core.io import read_json, write_json
from reprolab.medical.mmcbm_cohort import CLASS_SHORT, CLASSES, MODALITIES, load_cohort_meta
from reprolab.medical.mmcbm_folds import HELDOUT, classification_metrics, macro_f1

log = logging.getLogger("reprolab.mmcbm")
N_CLASSES = len(CLASSES)
#: T1 columns: the macro averages of the card's metrics.
T1_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")


def fold_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The T1 metrics of one set of predictions."""
    m = classification_metrics(y, pred, N_CLASSES)
    return {"accuracy": m["accuracy"], "macro_precision": float(np.mean(m["precision"])),
            "macro_recall": float(np.mean(m["recall"])), "macro_f1": m["macro_f1"], "weighted_f1": m["weighted_f1"]}


def summarise_runs(values: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of every metric over folds (and seeds)."""
    out = {}
    for key in T1_METRICS:
        arr = np.array([v[key] for v in values], dtype=float)
        out[key] = {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                    "n": len(arr)}
    return out


def sign_agreement(class_weights: np.ndarray, reference: np.ndarray, concepts: np.ndarray) -> np.ndarray:
    """Whether each (class, concept) weight departs from its class mean in the reference's direction.

    With sigmoid weights every concept-class weight is positive, and softmax ignores what is
    common to all classes, so a weight is read relative to the concept's mean over classes:
    ``sign(w[k, c] - mean_j w[j, c]) == sign(ref[k, c] - mean_j ref[j, c])``.

    Parameters
    ----------
    class_weights
        ``[n_classes, >= K]`` sigmoid weights.
    reference
        ``[n_classes, K]`` reference association (the generator's P(c | y), or report frequencies).
    concepts
        Indices of the concepts to compare (e.g. the discriminative ones).

    Returns
    -------
    numpy.ndarray
        bool ``[n_classes, len(concepts)]``.
    """
    w = class_weights[:, concepts]
    r = reference[:, concepts]
    return np.sign(w - w.mean(0, keepdims=True)) == np.sign(r - r.mean(0, keepdims=True))


def report_association(reports: np.ndarray, has_report: np.ndarray, labels: np.ndarray, available: np.ndarray,
                       concept_modality: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """P(report mentions c | class) among reported ``patients`` that have the concept's modality, ``[3, K]``."""
    out = np.full((N_CLASSES, reports.shape[1]), np.nan)
    rep = patients[has_report[patients]]
    for k in range(N_CLASSES):
        cls = rep[labels[rep] == k]
        has = available[cls][:, concept_modality]  # [n, K]
        counts = has.sum(0)
        out[k] = np.where(counts > 0, (reports[cls] & has).sum(0) / np.maximum(counts, 1), np.nan)
    return out


def reference_predictions(meta: dict[str, np.ndarray], folds: np.ndarray) -> np.ndarray | None:
    """Demo only: out-of-fold logistic regression on the generator's true visible concepts (a ceiling)."""
    if "true_concepts" not in meta:
        return None
    avail = meta["available"]
    x = (meta["true_concepts"] & avail[:, meta["concept_modality"]] & meta["visible"][None, :]).astype(float)
    x = np.concatenate([x, (~avail).astype(float)], axis=1)
    pred = np.full(len(folds), -1)
    for k in np.unique(folds[folds != HELDOUT]):
        train, test = (folds != k) & (folds != HELDOUT), folds == k
        pred[test] = LogisticRegression(max_iter=2000).fit(x[train], meta["labels"][train]).predict(x[test])
    return pred


def _by_seed_fold(eval_paths: list[str]) -> dict[int, dict[int, dict[str, Any]]]:
    runs: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for path in eval_paths:
        e = read_json(path)
        runs[int(e["seed"])][int(e["fold"])] = e
    return dict(sorted(runs.items()))


def _oof(runs: dict[int, dict[int, dict[str, Any]]], field: str, n: int) -> np.ndarray:
    """``[n_seeds, n_patients]`` out-of-fold predictions of an arm (-1 where a patient is held out)."""
    out = np.full((len(runs), n), -1, dtype=np.int64)
    for s, folds in enumerate(runs.values()):
        for e in folds.values():
            idx, held = np.asarray(e["index"]), np.asarray(e["heldout"], dtype=bool)
            out[s, idx[~held]] = np.asarray(e[field]["pred"])[~held]
    return out


def _subset_preds(runs, key: str, arm: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled (index, [n_seeds, n]) predictions of a per-patient subset record (single modality / drop)."""
    index, preds = None, []
    for folds in runs.values():
        idx, pred = [], []
        for e in folds.values():
            rec = e[key[0]][key[1]]
            held = np.isin(rec["index"], np.asarray(e["index"])[np.asarray(e["heldout"], dtype=bool)])
            sub = rec[arm] if arm else rec
            idx.append(np.asarray(rec["index"])[~held])
            pred.append(np.asarray(sub["pred"])[~held])
        order = np.argsort(np.concatenate(idx))
        index = np.concatenate(idx)[order]
        preds.append(np.concatenate(pred)[order])
    return index, np.stack(preds)


def _intervention(runs, labels: np.ndarray) -> dict[str, Any]:
    """Pooled accuracy and macro-F1 per number of corrected concepts, and per-patient outcomes at 0 and max."""
    n_max = max(len(e["intervention"]["pred"]) for folds in runs.values() for e in folds.values())
    acc, f1, first, last, idx_all = [], [], [], [], None
    for folds in runs.values():
        idx = np.concatenate([np.asarray(e["intervention"]["index"]) for e in folds.values()])
        steps = []
        for n in range(n_max):
            steps.append(np.concatenate([np.asarray(e["intervention"]["pred"][min(n, len(e["intervention"]["pred"]) - 1)])
                                         for e in folds.values()]))
        steps_arr = np.stack(steps)
        order = np.argsort(idx)
        idx, steps_arr = idx[order], steps_arr[:, order]
        y = labels[idx]
        acc.append([(s == y).mean() if len(y) else np.nan for s in steps_arr])
        f1.append([macro_f1(y, s) if len(y) else np.nan for s in steps_arr])
        first.append(steps_arr[0])
        last.append(steps_arr[-1])
        idx_all = idx
    truth = next(iter(next(iter(runs.values())).values()))["intervention"]["truth"]
    return {"truth": truth, "n": list(range(n_max)), "accuracy": np.mean(acc, 0).tolist(),
            "macro_f1": np.mean(f1, 0).tolist(), "index": idx_all.tolist(), "labels": labels[idx_all].tolist(),
            "pred_none": np.stack(first).tolist(), "pred_all": np.stack(last).tolist()}


def _nanmean(arr: np.ndarray) -> list[float | None]:
    """Column means ignoring NaN; ``None`` where a column has no value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(arr, axis=0)
    return [float(v) if np.isfinite(v) else None for v in mean]


def _concept_quality(runs) -> dict[str, list[float | None]]:
    """CAV quality per concept, averaged over folds and seeds."""
    records = [e["cav"] for folds in runs.values() for e in folds.values()]
    out = {f: _nanmean(np.array([r[f] for r in records], dtype=float))
           for f in ("val_accuracy", "auc_true_image", "auc_report_patient", "n_positive")}
    out["fitted_fraction"] = np.mean([r["fitted"] for r in records], axis=0).tolist()
    return out


def _contributions(runs) -> tuple[np.ndarray, np.ndarray]:
    """Class contributions averaged over folds weighted by class counts, and mean sigmoid weights."""
    contrib, counts, weights = [], [], []
    for folds in runs.values():
        for e in folds.values():
            contrib.append(np.asarray(e["contributions"]))
            counts.append(np.asarray(e["class_counts_test"], dtype=float))
            weights.append(np.asarray(e["class_weights"]))
    c, n = np.stack(contrib), np.stack(counts)[:, :, None]
    return (c * n).sum(0) / np.maximum(n.sum(0), 1), np.mean(weights, 0)


def run_evaluation(cohort_path: str, folds_path: str, eval_paths: list[str], history_paths: list[str],
                   settings: dict[str, Any], out: str) -> None:
    """Rule ``mmcbm_evaluate``: write ``metrics.json`` (see the module docstring)."""
    meta = load_cohort_meta(cohort_path)
    folds = np.asarray(read_json(folds_path)["folds"], dtype=np.int64)
    labels = meta["labels"]
    runs = _by_seed_fold(eval_paths)
    expected = {(s, f) for s in settings["seeds"] for f in range(settings["n_folds"])}
    found = {(s, f) for s, fs in runs.items() for f in fs}
    if found != expected:
        raise DataError(f"mmcbm evaluations: expected (seed, fold) {sorted(expected)}, found {sorted(found)}")
    cv = np.flatnonzero(folds != HELDOUT)
    bb, mm = _oof(runs, "backbone", len(labels))[:, cv], _oof(runs, "mmcbm", len(labels))[:, cv]
    ref = reference_predictions(meta, folds)

    per_fold: dict[str, list[dict[str, float]]] = defaultdict(list)
    heldout: dict[str, list[dict[str, float]]] = defaultdict(list)
    for folds_runs in runs.values():
        for e in folds_runs.values():
            y, held = np.asarray(e["labels"]), np.asarray(e["heldout"], dtype=bool)
            for arm in ("backbone", "mmcbm"):
                pred = np.asarray(e[arm]["pred"])
                per_fold[arm].append(fold_metrics(y[~held], pred[~held]))
                if held.any():
                    heldout[arm].append(fold_metrics(y[held], pred[held]))
            for m in MODALITIES:
                rec = e["single_modality"][m]
                idx = np.asarray(rec["index"])
                keep = ~np.isin(idx, np.asarray(e["index"])[held])
                if keep.any():
                    per_fold[f"mmcbm_{m}"].append(fold_metrics(labels[idx[keep]], np.asarray(rec["pred"])[keep]))
            if ref is not None:
                test = np.asarray(e["index"])[~held]
                per_fold["reference"].append(fold_metrics(labels[test], ref[test]))

    single = {}
    for m in MODALITIES:
        idx, pred = _subset_preds(runs, ("single_modality", m), None)
        pos = np.searchsorted(cv, idx)
        single[m] = {"index": idx.tolist(), "labels": labels[idx].tolist(), "pred": pred.tolist(),
                     "backbone_pred": bb[:, pos].tolist()}
    drops = {}
    for m in MODALITIES:
        idx, bb_drop = _subset_preds(runs, ("modality_drop", m), "backbone")
        _, mm_drop = _subset_preds(runs, ("modality_drop", m), "mmcbm")
        pos = np.searchsorted(cv, idx)
        drops[m] = {"index": idx.tolist(), "labels": labels[idx].tolist(), "backbone_full": bb[:, pos].tolist(),
                    "backbone_drop": bb_drop.tolist(), "mmcbm_full": mm[:, pos].tolist(), "mmcbm_drop": mm_drop.tolist()}

    contributions, weights = _contributions(runs)
    reference = meta["p_concept"] if "p_concept" in meta else report_association(
        meta["reports"], meta["has_report"], labels, meta["available"], meta["concept_modality"], cv)
    histories = [read_json(p) for p in sorted(history_paths)]
    write_json(out, {
        "source": str(meta["source"]), "classes": list(CLASSES), "class_short": list(CLASS_SHORT),
        "seeds": list(runs), "n_folds": settings["n_folds"],
        "concepts": {
            "names": meta["concept_names"].tolist(), "names_zh": meta["concept_names_zh"].tolist(),
            "modality": [MODALITIES[i] for i in meta["concept_modality"]],
            "visible": meta["visible"].tolist() if "visible" in meta else None,
            "reference": np.where(np.isfinite(reference), reference, 0.0).tolist(),
            "reference_kind": "generator P(c|y)" if "p_concept" in meta else "report frequency P(c reported|y)",
        },
        "oof": {"index": cv.tolist(), "patients": meta["patients"][cv].tolist(), "labels": labels[cv].tolist(),
                "backbone": bb.tolist(), "mmcbm": mm.tolist(),
                "reference": ref[cv].tolist() if ref is not None else None},
        "pooled": {arm: classification_metrics(labels[cv], pred[0], N_CLASSES) for arm, pred in
                   (("backbone", bb), ("mmcbm", mm))},
        "t1": {arm: summarise_runs(v) for arm, v in per_fold.items()},
        "per_fold": per_fold,
        "heldout": {arm: summarise_runs(v) for arm, v in heldout.items()} if heldout else None,
        "single_modality": single, "modality_drop": drops,
        "intervention": _intervention(runs, labels),
        "cav": _concept_quality(runs),
        "contributions": contributions.tolist(), "class_weights": weights.tolist(),
        "histories": [{"fold": h["fold"], "seed": h["seed"], "train_loss": [r["train_loss"] for r in h["epochs"]],
                       "test_fold_macro_f1": [r["test_fold_macro_f1"] for r in h["epochs"]],
                       "seconds": sum(r["seconds"] for r in h["epochs"]), "device": h["device"]} for h in histories],
        "cbm_histories": [{"fold": e["fold"], "seed": e["seed"], "train_loss": [r["train_loss"] for r in e["cbm_history"]]}
                          for folds_runs in runs.values() for e in folds_runs.values()],
        "settings": {k: settings[k] for k in ("concepts", "cbm", "explain", "claims")},
    })

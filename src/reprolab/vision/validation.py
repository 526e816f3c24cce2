"""The sdconv DAG's validation split and its choice of the sparsity weight alpha.

The SD-Conv alpha the claims table judges is chosen on a validation split carved from the
training set, never on the test set (He et al., WACV 2023, arXiv:2204.02227, publish no
alpha; the card leaves it to the project). Two rules of the DAG do it, before any test
evaluation:

1. ``sdconv_split`` (:func:`run_split`): a seeded, stratified split of the (limited)
   training set into a fitting part and a validation part, written with its indices, seed,
   fraction and class counts.
2. ``sdconv_select`` (:func:`run_selection`): after every run has trained on the fitting
   part, reads each run's validation result (``history.json``) and applies the rule fixed in
   ``papers.sdconv.alpha_selection``: the SD-Conv alpha with the fewest non-zero parameters
   among those whose mean validation accuracy is at most ``max_val_drop`` below DY-Conv's;
   if none is, the alpha with the best validation accuracy. ``chosen_alpha`` set to a number
   fixes it instead (recorded as such).

``sdconv_evaluate`` takes the selection file as an input, so no test number exists before
the choice. This module imports no torch (the selection runs in the report environment).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import read_json, write_json
from reprolab.vision import run_name


def validation_split(labels: Sequence[int] | np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``range(len(labels))`` into fitting and validation indices (both sorted).

    Parameters
    ----------
    labels
        Class of every training sample, in the training file's order.
    fraction
        Share of the samples that go to validation (per class, rounded as scikit-learn does).
    seed
        Seed of the shuffle (``random_state`` of :func:`sklearn.model_selection.train_test_split`).

    Raises
    ------
    ConfigError
        If the fraction leaves a class without a sample in either part.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels).astype(int)
    idx = np.arange(len(y))
    try:
        fit, val = train_test_split(idx, test_size=fraction, random_state=int(seed), stratify=y)
    except ValueError as err:
        raise ConfigError(f"papers.sdconv.validation.fraction = {fraction}: cannot split {len(y)} training samples "
                          f"by class ({err}); raise the fraction or the training limit") from None
    return np.sort(fit), np.sort(val)


def training_labels(exp: dict[str, Any], train_path: str | Path) -> np.ndarray:
    """Labels of the experiment's training samples (after ``limit.train``) in file order."""
    limit = exp.get("limit", {}).get("train")
    if exp["dataset"] == "imagenet":
        from reprolab.data.imagenet import imagenet_dataset

        size = exp.get("loader", {}).get("image_size", 224)
        ds = imagenet_dataset(train_path, "train", False, size, limit)
        targets = ds.targets if hasattr(ds, "targets") else [ds.dataset.targets[i] for i in ds.indices]
        return np.asarray(targets, dtype=int)
    path = Path(train_path)
    if not path.exists():
        raise DataError(f"{path}: missing; run its data rule (data_static / data_frames) first")
    with np.load(path) as z:
        if "labels" not in z.files:
            raise DataError(f"{path}: no 'labels' array; delete the file and rerun the data rule that writes it")
        labels = z["labels"]
    return np.asarray(labels if limit is None else labels[:limit], dtype=int)


def run_split(exp: dict[str, Any], settings: dict[str, Any], train_path: str, out_json: str) -> dict[str, Any]:
    """The ``sdconv_split`` rule: carve the validation split and record it."""
    cfg = settings["validation"]
    labels = training_labels(exp, train_path)
    fit, val = validation_split(labels, cfg["fraction"], cfg["seed"])
    counts = {part: {str(k): int(v) for k, v in sorted(Counter(labels[ix].tolist()).items())}
              for part, ix in (("fit", fit), ("validation", val))}
    record = {"source": str(train_path), "n_train": len(labels), "fraction": float(cfg["fraction"]),
              "seed": int(cfg["seed"]), "stratified": True, "fit": fit.tolist(), "validation": val.tolist(),
              "class_counts": counts}
    write_json(out_json, record)
    return record


def read_split(path: str | Path) -> dict[str, np.ndarray]:
    """``{"fit": indices, "validation": indices}`` from a file written by :func:`run_split`."""
    rec = read_json(path)
    return {"fit": np.asarray(rec["fit"], dtype=np.int64), "validation": np.asarray(rec["validation"], dtype=np.int64)}


def select_alpha(histories: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Apply ``papers.sdconv.alpha_selection`` to the runs' validation results of one experiment.

    Parameters
    ----------
    histories
        ``history.json`` records (each with a ``validation`` block) of the DY-Conv and SD-Conv runs.
    settings
        ``papers.sdconv`` (``alphas``, ``chosen_alpha``, ``alpha_selection``).

    Returns
    -------
    dict
        ``chosen`` alpha, ``rule``, and per alpha the mean validation accuracy and non-zero
        parameters over seeds (and DY-Conv's reference accuracy).
    """
    alphas = [float(a) for a in settings["alphas"]["sdconv"]]
    fixed = settings["chosen_alpha"]
    by_run: dict[str, list[dict[str, Any]]] = {}
    for h in histories:
        by_run.setdefault(h["run"], []).append(h)

    def mean_of(run: str, key: str) -> float | None:
        recs = by_run.get(run)
        return float(np.mean([r["validation"][key] for r in recs])) if recs else None

    table = {f"{a:g}": {"validation_accuracy": mean_of(run_name("sdconv", a), "accuracy"),
                        "nonzero": mean_of(run_name("sdconv", a), "nonzero"),
                        "seeds": len(by_run.get(run_name("sdconv", a), []))} for a in alphas}
    missing = [a for a, row in table.items() if row["seeds"] == 0]
    if missing:
        raise DataError(f"alpha selection: no validation result for SD-Conv alpha {missing}; rerun their training")
    reference = mean_of("dynamic", "accuracy")
    out: dict[str, Any] = {"alphas": table, "dynamic_validation_accuracy": reference,
                           "n_validation": by_run[run_name("sdconv", alphas[0])][0]["validation"]["n"]}
    if fixed != "validation":
        return {**out, "rule": "fixed in papers.sdconv.chosen_alpha before the runs", "chosen": float(fixed)}
    max_drop = float(settings["alpha_selection"]["max_val_drop"])
    if reference is None:
        chosen = max(alphas, key=lambda a: (table[f"{a:g}"]["validation_accuracy"], a))
        rule = "highest mean validation accuracy (no DY-Conv arm to compare with)"
    else:
        eligible = [a for a in alphas if table[f"{a:g}"]["validation_accuracy"] >= reference - max_drop - 1e-12]
        if eligible:
            chosen = min(eligible, key=lambda a: (table[f"{a:g}"]["nonzero"], -a))
            rule = (f"fewest non-zero parameters among the alphas within {100 * max_drop:g} point(s) of DY-Conv's "
                    "mean validation accuracy")
        else:
            chosen = max(alphas, key=lambda a: (table[f"{a:g}"]["validation_accuracy"], a))
            rule = (f"no alpha within {100 * max_drop:g} point(s) of DY-Conv on validation: the highest mean "
                    "validation accuracy")
    return {**out, "rule": rule, "max_val_drop": max_drop, "chosen": float(chosen)}


def run_selection(history_paths: Sequence[str], settings: dict[str, Any], out_json: str) -> dict[str, Any]:
    """The ``sdconv_select`` rule: choose alpha from the validation results and write the choice."""
    record = select_alpha([read_json(p) for p in history_paths], settings)
    record["evidence"] = sorted(str(p) for p in history_paths)
    write_json(out_json, record)
    return record

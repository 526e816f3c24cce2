"""The jobs of the ``mmcbm`` DAG: cohort, folds, backbone training, and the per-fold concept model.

Each public ``run_*`` / ``train_*`` function is one rule of ``workflow/rules/mmcbm.smk``.
Training keeps the contract of :func:`reprolab.core.loop.run_epochs` (seeded per epoch,
resumable from ``checkpoints/mmcbm/...``, final epoch used: no selection on the test fold).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reprolab.core import distributed as dd
from reprolab.core.io import atomic_path, write_json
from reprolab.core.loop import run_epochs, run_key
from reprolab.core.runtime import choose_device, seed_everything, set_threads
from reprolab.medical.mmcbm_cohort import (
    CLASSES,
    MODALITIES,
    Cohort,
    load_cohort,
)
from reprolab.medical.mmcbm_concepts import (
    ConceptBank,
    bottleneck_inputs,
    class_contributions,
    concept_auc,
    fit_concept_bank,
    fused_scores,
    image_scores,
    intervene,
    intervention_order,
)
from reprolab.medical.mmcbm_folds import HELDOUT, classification_metrics, load_folds
from reprolab.medical.mmcbm_models import Backbone, ConceptBottleneck, batch_tensors

log = logging.getLogger("reprolab.mmcbm")
N_CLASSES = len(CLASSES)


# --------------------------------------------------------------------------- folds


def fold_seed(seed: int, fold: int) -> int:
    """Seed of one (seed, fold) job."""
    return int(seed) * 1000 + int(fold)


def _split(folds: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training patients, test-fold patients, held-out patients) of ``fold``."""
    return (np.flatnonzero((folds != fold) & (folds != HELDOUT)), np.flatnonzero(folds == fold),
            np.flatnonzero(folds == HELDOUT))


def _data_key(cohort: Cohort, folds: np.ndarray) -> str:
    digest = hashlib.sha256()
    for arr in (cohort.patients.astype(str), cohort.labels, folds, cohort.reports):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- backbone


def build_backbone(settings: dict[str, Any], imagenet_weights: str | None = None) -> Backbone:
    """The backbone of ``papers.mmcbm.encoder`` / ``backbone`` settings."""
    enc = settings["encoder"]
    return Backbone(settings["normalization"], enc["width_mult"], enc["depth_mult"],
                    imagenet_weights if enc["imagenet"] else None, N_CLASSES, settings["backbone"]["dropout"])


def _flip(images: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Flip every image of a random half of the patients left-right."""
    flip = torch.from_numpy(rng.random(next(iter(images.values())).shape[0]) < 0.5)
    return {m: torch.where(flip.view(-1, 1, 1, 1, 1).to(x.device), x.flip(-1), x) for m, x in images.items()}


def _batches(index: np.ndarray, size: int) -> list[np.ndarray]:
    return [index[i : i + size] for i in range(0, len(index), size)]


@torch.no_grad()
def predict_backbone(model: Backbone, cohort: Cohort, index: np.ndarray, device: str, batch_size: int) -> np.ndarray:
    """Class probabilities ``[len(index), 3]`` of the backbone."""
    model.eval()
    out = [torch.softmax(model(*batch_tensors(cohort.images, cohort.image_mask, b, device)), 1).cpu().numpy()
           for b in _batches(index, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, N_CLASSES))


def train_backbone(cohort_path: str, folds_path: str, fold: int, seed: int, settings: dict[str, Any],
                   device: str, checkpoint_dir: str, out_model: str, out_history: str,
                   imagenet_weights: str | None = None, threads: int = 1) -> None:
    """Rule ``mmcbm_backbone``: train the black box on the training folds (final epoch kept).

    Cross-entropy, AdamW (card 2.1). The test fold's macro-F1 is logged per epoch as a
    diagnostic only; nothing is selected on it. Runs in the processes ``settings["resources"]``
    asks for (:func:`reprolab.core.distributed.launch_training`): every process draws the same
    global batches and flips, trains the DDP-wrapped backbone on its share (a modality absent
    from a share leaves its encoder unused there, so DDP looks for unused parameters), sums the
    training numbers over processes and takes rank 0's BatchNorm statistics before the
    diagnostic; only rank 0 writes. A trailing batch with fewer patients than processes is
    skipped (it cannot be split); with one process nothing changes.
    """
    dd.launch_training(_backbone_job, (cohort_path, folds_path, fold, seed, settings, checkpoint_dir, out_model,
                                       out_history, imagenet_weights),
                       settings.get("resources"), device, threads)


def _backbone_job(cohort_path: str, folds_path: str, fold: int, seed: int, settings: dict[str, Any],
                  checkpoint_dir: str, out_model: str, out_history: str, imagenet_weights: str | None, *,
                  device: str, sync_batchnorm: bool) -> None:
    """Body of :func:`train_backbone` in every process."""
    cohort = load_cohort(cohort_path)
    folds = load_folds(folds_path, cohort)
    train, test, _ = _split(folds, fold)
    cfg = settings["backbone"]
    seed_everything(fold_seed(seed, fold))
    model = build_backbone(settings, imagenet_weights).to(device)
    net = dd.wrap(model, device, sync_batchnorm, find_unused_parameters=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    labels = torch.from_numpy(cohort.labels)
    loss_fn = nn.CrossEntropyLoss()

    def epoch(e: int) -> dict[str, float]:
        net.train()
        rng = np.random.default_rng(np.random.randint(2**31))
        total, correct, count = 0.0, 0, 0
        for b in _batches(rng.permutation(train), cfg["batch_size"]):
            images, masks = batch_tensors(cohort.images, cohort.image_mask, b, device)
            if cfg["hflip"]:
                images = _flip(images, rng)  # drawn for the global batch: the same flips on every process
            if len(b) < dd.world_size():
                continue
            n_global = len(b)
            if dd.is_distributed():
                part = torch.from_numpy(dd.local_share(np.arange(n_global))).to(device)
                images, masks = {m: x[part] for m, x in images.items()}, {m: x[part] for m, x in masks.items()}
                b = b[part.cpu().numpy()]
            y = labels[b].to(device)
            logits = net(images, masks)
            loss = loss_fn(logits, y)
            opt.zero_grad()
            (loss * dd.share_weight(len(b), n_global)).backward()  # the factor is exactly 1.0 with one process
            opt.step()
            total += loss.item() * len(b)
            correct += int((logits.argmax(1) == y).sum())
            count += len(b)
        sums = dd.reduce_sums({"total": total, "correct": correct, "count": count})
        dd.sync_buffers(model)
        probs = predict_backbone(model, cohort, test, device, cfg["batch_size"])
        test_f1 = classification_metrics(cohort.labels[test], probs.argmax(1))["macro_f1"]
        return {"train_loss": sums["total"] / sums["count"], "train_accuracy": sums["correct"] / sums["count"],
                "test_fold_macro_f1": test_f1}

    key = run_key({"settings": {k: settings[k] for k in ("encoder", "backbone", "normalization")},
                   "fold": fold, "seed": seed, "data": _data_key(cohort, folds)})
    history = run_epochs(epoch, {"model": model, "optimizer": opt}, cfg["epochs"], fold_seed(seed, fold), key,
                         checkpoint_dir, desc=f"backbone fold {fold}")
    if not dd.is_main():
        return
    with atomic_path(out_model) as tmp:
        torch.save(model.state_dict(), tmp)
    write_json(out_history, {"fold": fold, "seed": seed, "device": device, "n_train": len(train),
                             "n_test": len(test), "epochs": history})


@torch.no_grad()
def encode_cohort(model: Backbone, cohort: Cohort, device: str, batch_size: int) -> dict[str, np.ndarray]:
    """Frozen features of every image: ``{modality: [N, P_m, F]}`` (zeros for missing images)."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    for b in _batches(np.arange(cohort.n_patients), batch_size):
        feats = model.encode(*batch_tensors(cohort.images, cohort.image_mask, b, device))
        for m in MODALITIES:
            parts[m].append(feats[m].cpu().numpy())
    return {m: np.concatenate(parts[m]) for m in MODALITIES}


@torch.no_grad()
def classify_features(model: Backbone, features: dict[str, np.ndarray], masks: dict[str, np.ndarray],
                      index: np.ndarray) -> np.ndarray:
    """Backbone probabilities from cached features (a modality is dropped through ``masks``)."""
    model.eval()
    f = {m: torch.from_numpy(features[m][index]).float() for m in MODALITIES}
    k = {m: torch.from_numpy(masks[m][index]) for m in MODALITIES}
    model_cpu = model.to("cpu")
    return torch.softmax(model_cpu.classify(f, k), 1).numpy()


# --------------------------------------------------------------------------- concept bottleneck


def train_bottleneck(x: np.ndarray, y: np.ndarray, settings: dict[str, Any], seed: int, checkpoint_dir: str | Path,
                     name: str) -> tuple[ConceptBottleneck, list[dict[str, Any]]]:
    """Train the sigmoid-weight linear bottleneck on concept inputs ``x`` (Adam, cross-entropy; card 2.3)."""
    cfg = settings["cbm"]
    seed_everything(seed)
    model = ConceptBottleneck(x.shape[1], N_CLASSES, cfg["init"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    loss_fn = nn.CrossEntropyLoss()

    def epoch(e: int) -> dict[str, float]:
        perm = torch.randperm(len(xt))
        total = 0.0
        for i in range(0, len(perm), cfg["batch_size"]):
            b = perm[i : i + cfg["batch_size"]]
            loss = loss_fn(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        return {"train_loss": total / len(xt)}

    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()
    key = run_key({"cbm": cfg, "seed": seed, "name": name, "data": digest[:16]})
    history = run_epochs(epoch, {"cbm": model, "optimizer": opt}, cfg["epochs"], seed, key,
                         Path(checkpoint_dir) / name, progress=False, desc=f"cbm {name}")
    return model, history


@torch.no_grad()
def predict_bottleneck(model: ConceptBottleneck, x: np.ndarray) -> np.ndarray:
    """Class probabilities ``[N, 3]``."""
    return torch.softmax(model(torch.from_numpy(x).float()), 1).numpy()


def _bank_summary(bank: ConceptBank, cohort: Cohort, scores: dict[str, np.ndarray], test: np.ndarray,
                  fused: np.ndarray) -> dict[str, Any]:
    """CAV quality per concept: SVM accuracies, and AUC against the truth on the test fold."""
    auc_true, auc_report = [], []
    reported = test[cohort.has_report[test]]
    for k in range(cohort.n_concepts):
        m = MODALITIES[cohort.concept_modality[k]]
        local = int(np.flatnonzero(cohort.concepts_of(m) == k)[0])
        if cohort.true_concepts is not None and bank.fitted[k]:
            mask = cohort.image_mask[m][test]
            truth = cohort.true_concepts[test, k][:, None] & cohort.concept_phases[k, : mask.shape[1]][None, :]
            auc_true.append(concept_auc(scores[m][test][..., local][mask], np.broadcast_to(truth, mask.shape)[mask]))
        else:
            auc_true.append(float("nan"))
        has_m = reported[cohort.available[reported, cohort.concept_modality[k]]]
        auc_report.append(concept_auc(fused[has_m, k], cohort.reports[has_m, k]) if bank.fitted[k] else float("nan"))
    return {
        "fitted": bank.fitted.tolist(), "train_accuracy": bank.train_accuracy.tolist(),
        "val_accuracy": bank.val_accuracy.tolist(), "n_positive": bank.n_positive.tolist(),
        "n_negative": bank.n_negative.tolist(), "auc_true_image": auc_true, "auc_report_patient": auc_report,
        "patients_used": len(bank.patients_used),
    }


def _predictions(probs: np.ndarray) -> dict[str, Any]:
    return {"pred": probs.argmax(1).tolist(), "prob": np.round(probs, 5).tolist()}


def run_concept_fold(cohort_path: str, folds_path: str, model_path: str, fold: int, seed: int,
                     settings: dict[str, Any], device: str, checkpoint_dir: str, out_eval: str,
                     threads: int = 1) -> None:
    """Rule ``mmcbm_concepts``: concept bank, MMCBM and its variants on one fold; every evaluation.

    Writes per-patient predictions of the backbone and MMCBM (test fold and held-out patients),
    single-modality MMCBMs, modality-drop ablations, the concept-intervention curve, CAV quality,
    sigmoid weights and class contributions.
    """
    set_threads(threads)
    cohort = load_cohort(cohort_path)
    folds = load_folds(folds_path, cohort)
    train, test, heldout = _split(folds, fold)
    evaluated = np.concatenate([test, heldout])
    device = choose_device(device)
    model = build_backbone({**settings, "encoder": {**settings["encoder"], "imagenet": False}})
    model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
    model.to(device)
    features = encode_cohort(model, cohort, device, settings["backbone"]["batch_size"])
    model.to("cpu")
    masks = cohort.image_mask
    backbone_prob = classify_features(model, features, masks, evaluated)

    rng = np.random.default_rng(fold_seed(seed, fold))
    c = settings["concepts"]
    bank = fit_concept_bank(cohort, features, train, c["n_samples"], c["svm_c"], c["cav_split"], c["min_positives"],
                            rng)
    leaked = np.intersect1d(bank.patients_used, evaluated)
    if len(leaked):  # a guard: fit_concept_bank only reads train patients
        raise RuntimeError(f"concept bank used {len(leaked)} test patients")
    scores = image_scores(bank, cohort, features)
    fused = fused_scores(cohort, scores)
    available = cohort.available
    inputs = bottleneck_inputs(fused, available)
    ckpt = Path(checkpoint_dir)
    cbm, history = train_bottleneck(inputs[train], cohort.labels[train], settings, fold_seed(seed, fold), ckpt, "MM")
    mm_prob = predict_bottleneck(cbm, inputs[evaluated])
    weights = cbm.class_weights.detach().numpy()

    single = {}
    for mi, m in enumerate(MODALITIES):
        cols = cohort.concepts_of(m)
        tr, ev = train[available[train, mi]], evaluated[available[evaluated, mi]]
        sm, _ = train_bottleneck(fused[tr][:, cols], cohort.labels[tr], settings, fold_seed(seed, fold), ckpt, m)
        single[m] = {"index": ev.tolist(), **_predictions(predict_bottleneck(sm, fused[ev][:, cols]))}

    drops = {}
    for mi, m in enumerate(MODALITIES):
        ev = evaluated[available[evaluated, mi] & (available[evaluated].sum(1) > 1)]
        dropped = {k: (v & False) if k == m else v for k, v in masks.items()}
        d_fused = fused_scores(cohort, scores, dropped)
        d_avail = available.copy()
        d_avail[:, mi] = False
        drops[m] = {"index": ev.tolist(),
                    "backbone": _predictions(classify_features(model, features, dropped, ev)),
                    "mmcbm": _predictions(predict_bottleneck(cbm, bottleneck_inputs(d_fused, d_avail)[ev]))}

    intervention = _intervention_curve(cohort, bank, cbm, fused, weights, test)
    contributions = class_contributions(weights, fused[test], cohort.labels[test], N_CLASSES)
    write_json(out_eval, {
        "fold": fold, "seed": seed, "device": device,
        "index": evaluated.tolist(), "patients": cohort.patients[evaluated].tolist(),
        "labels": cohort.labels[evaluated].tolist(), "heldout": (folds[evaluated] == HELDOUT).tolist(),
        "n_train": len(train),
        "backbone": _predictions(backbone_prob), "mmcbm": _predictions(mm_prob),
        "single_modality": single, "modality_drop": drops, "intervention": intervention,
        "cav": _bank_summary(bank, cohort, scores, test, fused),
        "class_weights": np.round(weights, 6).tolist(),
        "contributions": np.round(contributions, 6).tolist(),
        "class_counts_test": [int((cohort.labels[test] == k).sum()) for k in range(N_CLASSES)],
        "cbm_history": history,
    })


def _intervention_curve(cohort: Cohort, bank: ConceptBank, cbm: ConceptBottleneck, fused: np.ndarray,
                        weights: np.ndarray, patients: np.ndarray) -> dict[str, Any]:
    """Predictions after correcting the n most influential concepts, n = 0 .. number fitted.

    Truth: the generator's concepts (demo) or, at paper scale, the reports of the test-fold
    patients that have one (concepts a report does not mention count as absent).
    """
    if cohort.true_concepts is not None:
        truth, idx, source = cohort.true_concepts, patients, "generator"
    else:
        truth, idx, source = cohort.reports, patients[cohort.has_report[patients]], "reports"
    order = intervention_order(weights, bank.fitted)
    present = cohort.available[:, cohort.concept_modality]
    preds = []
    for n in range(len(order) + 1):
        corrected = intervene(fused[idx], truth[idx], order[:n], bank, present[idx])
        preds.append(predict_bottleneck(cbm, bottleneck_inputs(corrected, cohort.available[idx])).argmax(1).tolist())
    return {"truth": source, "index": idx.tolist(), "order": order.tolist(), "pred": preds}

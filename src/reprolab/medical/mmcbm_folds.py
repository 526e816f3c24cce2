"""Patient-grouped cross-validation folds and the classification metrics of ``mmcbm``.

The official ``k_fold.csv`` has one row per patient *and modality view* (924 rows for 692
patients), each with its own fold, so 184 patients sit in two or more folds (card, section 7).
Here a fold is a set of patients: every patient is in exactly one fold, and all of its
images and its report go with it. Metrics follow the card: macro-F1 is the primary number
(72 % of CTI is melanoma, so accuracy alone says little), with per-class precision and
recall, weighted F1 and accuracy beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import read_json, write_json
from reprolab.medical.mmcbm_cohort import CLASSES, Cohort, load_cohort

log = logging.getLogger("reprolab.mmcbm")

#: Fold value of patients that are held out of the cross-validation (CTI's test.csv).
HELDOUT = -1


def stratified_patient_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """One fold per patient, stratified by class (scikit-learn's ``StratifiedKFold``).

    Parameters
    ----------
    labels
        Class of each patient ``[N]`` (one row per patient, so folds are grouped by patient).
    n_folds
        Number of folds.
    seed
        Shuffling seed.

    Returns
    -------
    numpy.ndarray
        int64 ``[N]`` fold of each patient in ``0..n_folds-1``.
    """
    counts = np.bincount(labels)
    if counts[counts > 0].min() < n_folds:
        raise DataError(f"folds: the smallest class has {counts[counts > 0].min()} patients, fewer than "
                        f"n_folds={n_folds}; generate more patients or use fewer folds")
    folds = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[test] = k
    return folds


def official_patient_folds(patients: Sequence[str], rows: Sequence[tuple[str, str, int]]) -> tuple[np.ndarray, int]:
    """One fold per patient from the rows of the official ``k_fold.csv``.

    The file assigns a fold to each (patient, modality view) row independently. A patient
    whose rows disagree gets the fold of its row with the most modalities (the multimodal
    ``MM`` view first, then single modalities in the file's order), so it is never in two folds.

    Parameters
    ----------
    patients
        Patient ids of the cross-validation patients, in cohort order.
    rows
        ``(patient, modality view, fold)`` per row of ``k_fold.csv``.

    Returns
    -------
    folds, n_conflicts
        int64 ``[N]`` fold per patient, and how many patients had disagreeing rows.

    Raises
    ------
    DataError
        If a patient has no row (the split file does not belong to this cohort).
    """
    best: dict[str, tuple[tuple[int, int], int]] = {}
    seen: dict[str, set[int]] = {}
    for i, (patient, view, fold) in enumerate(rows):
        key = (0 if view == "MM" else 1, i)
        seen.setdefault(patient, set()).add(int(fold))
        if patient not in best or key < best[patient][0]:
            best[patient] = (key, int(fold))
    missing = [p for p in patients if p not in best]
    if missing:
        raise DataError(f"k_fold.csv: no fold for {len(missing)} cross-validation patients (e.g. {missing[:3]}); "
                        "the split files do not match the dataset")
    conflicts = sum(len(seen[p]) > 1 for p in patients)
    if conflicts:
        log.info("k_fold.csv: %d patients had rows in several folds; each now has the fold of its "
                 "multimodal (else first) row", conflicts)
    return np.array([best[p][1] for p in patients], dtype=np.int64), conflicts


def check_grouped(patients: np.ndarray, folds: np.ndarray) -> None:
    """Raise :class:`DataError` if a patient id appears in more than one fold."""
    where: dict[str, int] = {}
    for p, f in zip(patients.tolist(), folds.tolist()):
        if where.setdefault(p, f) != f:
            raise DataError(f"folds: patient {p} is in folds {where[p]} and {f}")


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> dict[str, Any]:
    """Accuracy, macro-F1 (primary), weighted F1, per-class precision / recall / F1, confusion matrix.

    Parameters
    ----------
    y_true, y_pred
        Class indices ``[n]``.
    n_classes
        Number of classes (labels ``0..n_classes-1``, absent ones count as zero-F1 classes).
    """
    labels = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                     zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        "macro_f1": macro_f1(y_true, y_pred, n_classes),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> float:
    """Unweighted mean of the per-class F1 over ``0..n_classes-1`` (the card's primary metric)."""
    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def make_folds(cohort: Cohort, settings: dict[str, Any], kfold_rows: list[tuple[str, str, int]] | None = None
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """One fold per patient (``HELDOUT`` for the held-out test split), and a summary.

    ``fold_source: stratified`` draws class-stratified folds over patients;
    ``official`` takes each patient's fold from CTI's ``k_fold.csv``
    (:func:`reprolab.medical.mmcbm_folds.official_patient_folds`).
    """
    folds = np.full(cohort.n_patients, HELDOUT, dtype=np.int64)
    cv = np.flatnonzero(cohort.split == "cv")
    conflicts = 0
    if settings["fold_source"] == "official":
        if kfold_rows is None:
            raise ConfigError("papers.mmcbm.fold_source: official needs CTI's k_fold.csv (dataset: cti)")
        folds[cv], conflicts = official_patient_folds(cohort.patients[cv].tolist(), kfold_rows)
        if folds[cv].max() + 1 != settings["n_folds"]:
            raise ConfigError(f"papers.mmcbm.n_folds is {settings['n_folds']} but k_fold.csv has "
                              f"{folds[cv].max() + 1} folds; set n_folds to match")
    else:
        folds[cv] = stratified_patient_folds(cohort.labels[cv], settings["n_folds"], settings["fold_seed"])
    check_grouped(cohort.patients, folds)
    summary = {
        "source": settings["fold_source"], "n_folds": settings["n_folds"], "patients_in_two_folds": 0,
        "official_rows_in_conflict": conflicts,
        "fold_sizes": [int((folds == k).sum()) for k in range(settings["n_folds"])],
        "heldout": int((folds == HELDOUT).sum()),
        "class_counts": [[int(((folds == k) & (cohort.labels == c)).sum()) for c in range(len(CLASSES))]
                         for k in range(settings["n_folds"])],
    }
    return folds, summary


def run_folds(cohort_path: str, settings: dict[str, Any], out: str, kfold_csv: str | None = None) -> None:
    """Rule ``mmcbm_folds``: ``folds.json`` with the fold of every patient."""
    cohort = load_cohort(cohort_path)
    rows = None
    if kfold_csv is not None:
        from reprolab.medical.mmcbm_cti import read_kfold_rows

        rows = read_kfold_rows(kfold_csv)
    folds, summary = make_folds(cohort, settings, rows)
    write_json(out, {"patients": cohort.patients.tolist(), "folds": folds.tolist(), **summary})


def load_folds(path: str, cohort: Cohort) -> np.ndarray:
    """The folds of ``folds.json``, checked against the cohort's patient order."""
    data = read_json(path)
    if data["patients"] != cohort.patients.tolist():
        raise ConfigError(f"{path}: patients differ from the cohort's; delete it and rerun rule mmcbm_folds")
    return np.asarray(data["folds"], dtype=np.int64)

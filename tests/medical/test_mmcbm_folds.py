"""mmcbm folds (grouped by patient) and metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from reprolab.core.errors import DataError
from reprolab.medical.mmcbm_folds import (
    HELDOUT,
    check_grouped,
    classification_metrics,
    make_folds,
    official_patient_folds,
    stratified_patient_folds,
)
from reprolab.medical.mmcbm_generator import generate_cohort


def test_stratified_folds_put_every_patient_in_one_fold():
    labels = np.repeat([0, 1, 2], [60, 20, 10])
    folds = stratified_patient_folds(labels, 5, seed=0)
    assert folds.shape == labels.shape and set(folds) == set(range(5))
    for c in range(3):
        counts = np.bincount(folds[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_too_few_patients_for_the_folds_is_a_clear_error():
    with pytest.raises(DataError, match="n_folds"):
        stratified_patient_folds(np.array([0, 0, 0, 0, 0, 1, 1]), 5, seed=0)


def test_official_rows_are_regrouped_by_patient():
    # k_fold.csv has one row per patient and modality view, each with its own fold
    rows = [("000001", "US", 3), ("000001", "FA", 1), ("000001", "MM", 2),
            ("000002", "FA", 0), ("000002", "ICGA", 4),
            ("000003", "US", 1)]
    folds, conflicts = official_patient_folds(["000001", "000002", "000003"], rows)
    assert folds.tolist() == [2, 0, 1]  # the MM row wins, else the first row
    assert conflicts == 2


def test_official_rows_missing_a_patient_fail():
    with pytest.raises(DataError, match="no fold"):
        official_patient_folds(["000001", "000009"], [("000001", "US", 0)])


def test_no_patient_in_two_folds_for_a_generated_cohort():
    cohort = generate_cohort({"n_patients": 80, "image_size": 48, "noise": 0.05, "concept_strength": 0.4,
                              "report_fraction": 0.5, "omission": 0.2}, seed=0)
    settings = {"fold_source": "stratified", "n_folds": 5, "fold_seed": 1}
    folds, summary = make_folds(cohort, settings)
    check_grouped(cohort.patients, folds)
    assert len(set(cohort.patients)) == len(folds) and (folds != HELDOUT).all()
    assert sum(summary["fold_sizes"]) == cohort.n_patients and summary["patients_in_two_folds"] == 0


def test_check_grouped_catches_a_patient_in_two_folds():
    with pytest.raises(DataError, match="p1"):
        check_grouped(np.array(["p1", "p2", "p1"]), np.array([0, 1, 2]))


def test_metrics_match_scikit_learn_and_keep_absent_classes():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 1, 0, 1, 0, 0, 0])
    m = classification_metrics(y, p)
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0))
    assert m["recall"][2] == 0.0 and m["confusion"][2][0] == 2
    assert m["accuracy"] == pytest.approx(4 / 8)

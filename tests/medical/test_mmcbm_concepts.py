"""mmcbm concept bank: no test-patient leakage, signed distances, fusion, the bottleneck's recovered weights."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import SVC

from reprolab.medical.mmcbm_cohort import MODALITIES
from reprolab.medical.mmcbm_concepts import (
    ConceptBank,
    bottleneck_inputs,
    class_contributions,
    concept_auc,
    concept_examples,
    fit_concept_bank,
    fused_scores,
    image_scores,
    intervene,
    intervention_order,
    top_concepts,
)
from reprolab.medical.mmcbm_evaluation import sign_agreement
from reprolab.medical.mmcbm_folds import macro_f1, stratified_patient_folds
from reprolab.medical.mmcbm_generator import discriminative, generate_cohort
from reprolab.medical.mmcbm_pipeline import predict_bottleneck, train_bottleneck


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort({"n_patients": 300, "image_size": 48, "noise": 0.05, "concept_strength": 0.4,
                            "report_fraction": 0.6, "omission": 0.2}, seed=0)


def image_features(cohort, blocks: int = 8) -> dict[str, np.ndarray]:
    """A fixed stand-in for a trained encoder: block-mean intensities and block-pooled |FFT| (texture)."""
    out = {}
    for m in MODALITIES:
        x = cohort.images[m][:, :, 0].astype(float) / 255
        n, p, h, w = x.shape
        pooled = x.reshape(n, p, blocks, h // blocks, blocks, w // blocks).mean((3, 5)).reshape(n, p, -1)
        spec = np.fft.fftshift(np.abs(np.fft.fft2(x - x.mean((-2, -1), keepdims=True))), axes=(-2, -1))
        spec = spec.reshape(n, p, blocks, h // blocks, blocks, w // blocks).mean((3, 5)).reshape(n, p, -1)
        f = np.concatenate([pooled, spec], -1)
        present = cohort.image_mask[m]
        f = (f - f[present].mean(0)) / (f[present].std(0) + 1e-6)
        out[m] = np.where(present[..., None], f, 0.0)
    return out


@pytest.fixture(scope="module")
def features(cohort):
    return image_features(cohort)


@pytest.fixture(scope="module")
def split(cohort):
    folds = stratified_patient_folds(cohort.labels, 3, seed=0)
    return np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)


def fit(cohort, features, train, seed=0):
    return fit_concept_bank(cohort, features, train, n_samples=50, svm_c=0.1, cav_split=0.5, min_positives=4,
                            rng=np.random.default_rng(seed))


def test_cavs_see_no_test_patient(cohort, features, split):
    train, test = split
    bank = fit(cohort, features, train)
    assert bank.fitted.sum() >= 15
    assert np.isin(bank.patients_used, train).all() and not np.isin(bank.patients_used, test).any()
    # poison everything a leak could read: test patients' features and their reports
    poisoned = {m: f.copy() for m, f in features.items()}
    for m in MODALITIES:
        poisoned[m][test] = np.nan
    reports = cohort.reports.copy()
    cohort.reports[test] = ~cohort.reports[test] & cohort.has_report[test, None]
    try:
        again = fit(cohort, poisoned, train)
    finally:
        cohort.reports[:] = reports
    np.testing.assert_array_equal(again.vectors, bank.vectors)
    np.testing.assert_array_equal(again.intercepts, bank.intercepts)


def test_examples_respect_phase_modality_and_reports(cohort, split):
    train, _ = split
    late = next(k for k, n in enumerate(cohort.concept_names) if n == "FA, late-phase leakage")
    pos, neg = concept_examples(cohort, late, train)
    assert (pos[:, 1] == 2).all()  # only the late image shows a late-phase finding
    assert cohort.reports[pos[:, 0], late].all() and cohort.has_report[neg[:, 0]].all()
    assert cohort.available[neg[:, 0], 0].all()  # negatives: FA images only
    assert not set(map(tuple, pos)) & set(map(tuple, neg))


def test_scores_are_signed_distances_to_the_svm_boundary():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    svm = SVC(kernel="linear", C=0.1).fit(x, y)
    bank = ConceptBank(vectors=svm.coef_.copy(), intercepts=svm.intercept_.copy(), fitted=np.array([True]),
                       train_accuracy=np.ones(1), val_accuracy=np.ones(1), n_positive=np.ones(1, int),
                       n_negative=np.ones(1, int), positive_mean=np.zeros(1), negative_mean=np.zeros(1),
                       patients_used=np.zeros(0, int))
    expected = svm.decision_function(x) / np.linalg.norm(svm.coef_)
    np.testing.assert_allclose(bank.scores(x, np.array([0]))[:, 0], expected, rtol=1e-10)


def test_cavs_detect_the_visible_concepts_not_the_invisible_ones(cohort, features, split):
    train, test = split
    bank = fit(cohort, features, train)
    scores = image_scores(bank, cohort, features)
    fused = fused_scores(cohort, scores)
    aucs = []
    for k in range(cohort.n_concepts):
        has = test[cohort.available[test, cohort.concept_modality[k]]]
        aucs.append(concept_auc(fused[has, k], cohort.true_concepts[has, k]))
    aucs = np.array(aucs)
    assert np.nanmedian(aucs[cohort.visible]) > 0.75
    assert np.all(np.abs(aucs[~cohort.visible] - 0.5) < 0.2)


def test_fusion_takes_the_max_over_present_phases_and_zero_for_missing_modalities(cohort):
    scores = {m: np.random.default_rng(1).normal(size=(*cohort.image_mask[m].shape, len(cohort.concepts_of(m))))
              for m in MODALITIES}
    fused = fused_scores(cohort, scores)
    fa = cohort.concepts_of("FA")
    has_fa = cohort.available[:, 0]
    np.testing.assert_allclose(fused[has_fa][:, fa], scores["FA"][has_fa].max(1))
    assert (fused[~has_fa][:, fa] == 0).all()
    masks = {m: (v & False) if m == "FA" else v for m, v in cohort.image_mask.items()}
    assert (fused_scores(cohort, scores, masks)[:, fa] == 0).all()
    x = bottleneck_inputs(fused, cohort.available)
    assert x.shape == (cohort.n_patients, cohort.n_concepts + 3) and (x[:, -3] == ~has_fa).all()


def test_bottleneck_recovers_the_generators_concept_class_directions(cohort, features, split, tmp_path):
    train, test = split
    bank = fit(cohort, features, train)
    x = bottleneck_inputs(fused_scores(cohort, image_scores(bank, cohort, features)), cohort.available)
    settings = {"cbm": {"lr": 0.05, "epochs": 40, "batch_size": 32, "init": "zero"}}
    cbm, _ = train_bottleneck(x[train], cohort.labels[train], settings, 0, tmp_path, "MM")
    weights = cbm.class_weights.detach().numpy()
    assert ((weights > 0) & (weights < 1)).all()
    pred = predict_bottleneck(cbm, x[test]).argmax(1)
    assert macro_f1(cohort.labels[test], pred) > macro_f1(cohort.labels[test], np.zeros_like(pred)) + 0.2
    concepts = np.flatnonzero(discriminative(cohort.p_concept) & cohort.visible)
    agree = sign_agreement(weights, cohort.p_concept, concepts)
    centred = np.abs(cohort.p_concept - cohort.p_concept.mean(0))[:, concepts]
    clear = centred >= 0.15  # pairs whose direction the generator sets clearly
    assert agree[clear].mean() >= 0.85


def test_intervention_writes_true_values_only_where_the_modality_exists(cohort):
    k = cohort.n_concepts
    bank = ConceptBank(vectors=np.zeros((k, 2)), intercepts=np.zeros(k), fitted=np.ones(k, bool),
                       train_accuracy=np.ones(k), val_accuracy=np.ones(k), n_positive=np.ones(k, int),
                       n_negative=np.ones(k, int), positive_mean=np.full(k, 2.0), negative_mean=np.full(k, -2.0),
                       patients_used=np.zeros(0, int))
    fused = np.zeros((cohort.n_patients, k))
    present = cohort.available[:, cohort.concept_modality]
    out = intervene(fused, cohort.true_concepts, np.arange(k), bank, present)
    assert (out[present & cohort.true_concepts] == 2.0).all() and (out[present & ~cohort.true_concepts] == -2.0).all()
    assert (out[~present] == 0).all()
    weights = np.zeros((3, k + 3))
    weights[:, 4] = [0.1, 0.9, 0.5]
    bank.fitted[7] = False
    order = intervention_order(weights, bank.fitted)
    assert order[0] == 4 and 7 not in order


def test_contributions_and_top_concepts():
    weights = np.array([[0.9, 0.1, 0.5, 0.5], [0.1, 0.9, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]])
    fused = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    contrib = class_contributions(weights, fused, np.array([0, 1, 2]), 3)
    assert contrib.shape == (3, 3) and contrib[0, 0] == pytest.approx(1.8)
    assert top_concepts(contrib, 1) == [[0], [1], [2]]

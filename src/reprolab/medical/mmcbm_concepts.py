"""The concept bank of ``mmcbm``: concept activation vectors, concept scores, explanations, interventions.

Card 2.2 (official ``models/MMCBM/concepts_bank.py``, ``cbm_location='report_strict'``): for
every concept c of a modality,

1. positives are the images of patients whose report mentions c, restricted to the phase
   images the concept belongs to (a late-phase finding: the late image); negatives are the
   other images of that modality of reported patients;
2. ``2 n`` positives and ``2 n`` negatives are drawn (``n_samples = 50``) and split half and
   half (``cav_split = 0.5``) into the CAV's training and validation examples;
3. the features are the frozen backbone encoder of the modality;
4. a linear SVM (scikit-learn ``SVC(kernel="linear", C)``) gives the concept activation
   vector ``w_c, b_c``;
5. the concept score of an image with features f is the signed distance
   ``s_c(f) = (w_c . f + b_c) / ||w_c||`` (``compute_dist``).

Only training-fold patients enter the bank: the reports of test patients are never read
(card, section 7). Differences from the official code, each a fix: negatives come from the
same modality (the official pool mixes images of all modalities, whose features come from
different encoders), and positives are drawn without replacement (the official code falls
back to drawing with replacement, which can put one image in both halves).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from reprolab.medical.mmcbm_cohort import MODALITIES, PHASES, Cohort

log = logging.getLogger("reprolab.mmcbm")


@dataclass
class ConceptBank:
    """Concept activation vectors of one fold.

    Attributes
    ----------
    vectors
        ``[K, F]`` SVM weights ``w_c`` (zeros for unfitted concepts).
    intercepts
        ``[K]`` SVM intercepts ``b_c``.
    fitted
        bool ``[K]``: the concept had enough examples in the training fold.
    train_accuracy, val_accuracy
        ``[K]`` SVM accuracy on its own training half and on the held-back half (NaN if unfitted).
    n_positive, n_negative
        ``[K]`` examples drawn (both halves).
    positive_mean, negative_mean
        ``[K]`` mean signed distance of the training positives / negatives: the values a
        concept intervention writes for a present / absent concept.
    patients_used
        Indices (cohort order) of every patient whose images or report entered the bank.
    """

    vectors: np.ndarray
    intercepts: np.ndarray
    fitted: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    n_positive: np.ndarray
    n_negative: np.ndarray
    positive_mean: np.ndarray
    negative_mean: np.ndarray
    patients_used: np.ndarray

    def scores(self, features: np.ndarray, concepts: np.ndarray) -> np.ndarray:
        """Signed distances ``[..., len(concepts)]`` of features ``[..., F]`` to the CAVs ``concepts``."""
        w, b = self.vectors[concepts], self.intercepts[concepts]
        norm = np.linalg.norm(w, axis=1)
        safe = np.where(norm > 0, norm, 1.0)
        return np.where(self.fitted[concepts], (features @ w.T + b) / safe, 0.0)


def concept_examples(cohort: Cohort, concept: int, patients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative images of one concept among ``patients`` (report_strict).

    Parameters
    ----------
    cohort
        The cohort.
    concept
        Concept index.
    patients
        Patient indices allowed in the bank (the training fold).

    Returns
    -------
    positives, negatives
        int arrays ``[n, 2]`` of (patient index, phase) pairs.
    """
    modality = MODALITIES[cohort.concept_modality[concept]]
    reported = patients[cohort.has_report[patients]]
    mask = cohort.image_mask[modality][reported]  # [n, P]
    phases = cohort.concept_phases[concept, : len(PHASES[modality])]
    positive = mask & phases[None, :] & cohort.reports[reported, concept][:, None]
    negative = mask & ~positive
    pos, neg = np.argwhere(positive), np.argwhere(negative)
    return (np.column_stack([reported[pos[:, 0]], pos[:, 1]]).astype(np.int64),
            np.column_stack([reported[neg[:, 0]], neg[:, 1]]).astype(np.int64))


def _draw_halves(examples: np.ndarray, n_samples: int, split: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw up to ``2 n_samples`` examples without replacement; split into (train, validation)."""
    take = rng.permutation(len(examples))[: 2 * n_samples]
    cut = round(len(take) * split)
    return examples[take[:cut]], examples[take[cut:]]


def fit_concept_bank(cohort: Cohort, features: dict[str, np.ndarray], train_patients: np.ndarray,
                     n_samples: int, svm_c: float, cav_split: float, min_positives: int,
                     rng: np.random.Generator) -> ConceptBank:
    """Fit one linear-SVM concept activation vector per concept on training-fold patients.

    Parameters
    ----------
    cohort
        The cohort (its reports and image masks).
    features
        ``{modality: [N, P_m, F]}`` frozen encoder features of every image.
    train_patients
        Patient indices whose images and reports may be used (nothing else is read).
    n_samples
        ``n_samples`` of the official code: up to ``2 n`` positives and ``2 n`` negatives are drawn.
    svm_c
        The SVM's C.
    cav_split
        Fraction of the drawn examples that trains the SVM (the rest validates it).
    min_positives
        Concepts with fewer positive images in the training fold stay unfitted (score 0).
    rng
        Random state of the draws.
    """
    train_patients = np.asarray(train_patients, dtype=np.int64)
    k_total = cohort.n_concepts
    dim = next(iter(features.values())).shape[-1]
    bank = ConceptBank(
        vectors=np.zeros((k_total, dim)), intercepts=np.zeros(k_total), fitted=np.zeros(k_total, dtype=bool),
        train_accuracy=np.full(k_total, np.nan), val_accuracy=np.full(k_total, np.nan),
        n_positive=np.zeros(k_total, dtype=np.int64), n_negative=np.zeros(k_total, dtype=np.int64),
        positive_mean=np.zeros(k_total), negative_mean=np.zeros(k_total),
        patients_used=np.zeros(0, dtype=np.int64),
    )
    used: set[int] = set()
    for k in range(k_total):
        modality = MODALITIES[cohort.concept_modality[k]]
        pos, neg = concept_examples(cohort, k, train_patients)
        bank.n_positive[k], bank.n_negative[k] = min(len(pos), 2 * n_samples), min(len(neg), 2 * n_samples)
        if len(pos) < min_positives or len(neg) < min_positives:
            log.info("concept %r: %d positive / %d negative images in the training fold; not fitted",
                     cohort.concept_names[k], len(pos), len(neg))
            continue
        pos_tr, pos_va = _draw_halves(pos, n_samples, cav_split, rng)
        neg_tr, neg_va = _draw_halves(neg, n_samples, cav_split, rng)
        feats = features[modality]
        x_tr = np.concatenate([feats[pos_tr[:, 0], pos_tr[:, 1]], feats[neg_tr[:, 0], neg_tr[:, 1]]])
        y_tr = np.r_[np.ones(len(pos_tr)), np.zeros(len(neg_tr))]
        svm = SVC(kernel="linear", C=svm_c).fit(x_tr, y_tr)
        bank.vectors[k], bank.intercepts[k], bank.fitted[k] = svm.coef_[0], svm.intercept_[0], True
        bank.train_accuracy[k] = svm.score(x_tr, y_tr)
        if len(pos_va) and len(neg_va):
            x_va = np.concatenate([feats[pos_va[:, 0], pos_va[:, 1]], feats[neg_va[:, 0], neg_va[:, 1]]])
            bank.val_accuracy[k] = svm.score(x_va, np.r_[np.ones(len(pos_va)), np.zeros(len(neg_va))])
        margins = bank.scores(x_tr, np.array([k]))[:, 0]
        bank.positive_mean[k], bank.negative_mean[k] = margins[y_tr == 1].mean(), margins[y_tr == 0].mean()
        used.update(np.concatenate([pos_tr, pos_va, neg_tr, neg_va])[:, 0].tolist())
    bank.patients_used = np.array(sorted(used), dtype=np.int64)
    return bank


def image_scores(bank: ConceptBank, cohort: Cohort, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per modality, the concept scores of every image: ``{m: [N, P_m, K_m]}`` (the modality's concepts)."""
    return {m: bank.scores(features[m], cohort.concepts_of(m)) for m in MODALITIES}


def fused_scores(cohort: Cohort, scores: dict[str, np.ndarray], masks: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Max fusion over a patient's phase images (official ``fusion='max'``), concepts concatenated.

    Parameters
    ----------
    cohort
        The cohort (concept order).
    scores
        :func:`image_scores`.
    masks
        Image masks to use (default: the cohort's); a dropped modality has an all-False mask.

    Returns
    -------
    numpy.ndarray
        ``[N, K]`` in the cohort's concept order; 0 for a modality the patient lacks (the card's
        project choice, with the missing-modality indicators of :func:`bottleneck_inputs`).
    """
    masks = cohort.image_mask if masks is None else masks
    out = np.zeros((cohort.n_patients, cohort.n_concepts))
    for m in MODALITIES:
        idx = cohort.concepts_of(m)
        s = np.where(masks[m][..., None], scores[m], -np.inf).max(axis=1)
        out[:, idx] = np.where(np.isfinite(s), s, 0.0)
    return out


def bottleneck_inputs(fused: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Concept scores followed by one missing-modality indicator per modality, ``[N, K + 3]``."""
    return np.concatenate([fused, (~available).astype(fused.dtype)], axis=1)


def class_contributions(class_weights: np.ndarray, fused: np.ndarray, labels: np.ndarray,
                        n_classes: int) -> np.ndarray:
    """Contribution of each concept to each class: sigmoid weight x mean score over the class.

    The card's project choice for ranking explanations (the official ranking rule is not
    documented): ``contribution[k, c] = sigmoid(W)[k, c] * mean_{n: y_n = k} s_{n, c}``.

    Parameters
    ----------
    class_weights
        ``[n_classes, >= K]`` sigmoid weights (indicator columns after the concepts are ignored).
    fused
        ``[N, K]`` fused concept scores.
    labels
        ``[N]`` classes of the patients to average over.
    n_classes
        Number of classes.
    """
    k = fused.shape[1]
    means = np.stack([fused[labels == c].mean(axis=0) if (labels == c).any() else np.zeros(k)
                      for c in range(n_classes)])
    return class_weights[:, :k] * means


def top_concepts(contributions: np.ndarray, top_k: int) -> list[list[int]]:
    """Indices of the ``top_k`` largest contributions per class (official ``analysis_top_k``)."""
    return [np.argsort(-row, kind="stable")[:top_k].tolist() for row in contributions]


def intervention_order(class_weights: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Concepts by decreasing spread of their class weights (max - min over classes), fitted ones only."""
    k = len(fitted)
    spread = class_weights[:, :k].max(axis=0) - class_weights[:, :k].min(axis=0)
    order = np.argsort(-spread, kind="stable")
    return order[fitted[order]]


def intervene(fused: np.ndarray, truth: np.ndarray, concepts: np.ndarray, bank: ConceptBank,
              present: np.ndarray) -> np.ndarray:
    """Replace the predicted scores of ``concepts`` by their true values (a concept intervention).

    A concept known to be present gets the mean signed distance of the CAV's training
    positives, an absent one that of its negatives (official ``web/intervention.py`` writes
    corrected scores and re-predicts). Concepts of modalities a patient lacks stay at 0.

    Parameters
    ----------
    fused
        ``[N, K]`` predicted fused scores.
    truth
        bool ``[N, K]`` true concepts.
    concepts
        Concept indices to correct.
    bank
        The fold's concept bank.
    present
        bool ``[N, K]``: the concept's modality exists for the patient.
    """
    out = fused.copy()
    if len(concepts) == 0:
        return out
    value = np.where(truth[:, concepts], bank.positive_mean[concepts], bank.negative_mean[concepts])
    out[:, concepts] = np.where(present[:, concepts], value, out[:, concepts])
    return out


def concept_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """ROC AUC of scores against binary truth; NaN when only one class is present."""
    truth = np.asarray(truth, dtype=bool)
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, scores))

"""The patient cohort that every ``mmcbm`` step reads: images, labels, reports, (demo) truth.

Wu et al., "A Concept-based Interpretable Model for the Diagnosis of Choroid Neoplasias
using Multimodal Data", Nat. Commun. 16:3504 (2025), arXiv:2403.05606. A patient has up to
three modalities: fluorescein angiography (FA, three phase images: early, middle, late),
indocyanine green angiography (ICGA, three phases) and ultrasound (US, one image). Some
patients have a radiology report, reduced to the list of concepts it mentions.

The same container holds the generated demo cohort (:mod:`reprolab.medical.mmcbm_generator`,
with its known truth) and the CTI dataset (:mod:`reprolab.medical.mmcbm_cti`), so every
later step is the same at both scales; :func:`run_cohort` (rule ``mmcbm_cohort``) builds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import atomic_path, write_json

log = logging.getLogger("reprolab.mmcbm")

#: The three imaging modalities, in the order of every modality axis.
MODALITIES: tuple[str, ...] = ("FA", "ICGA", "US")
#: Phase images per modality (FA / ICGA: early, middle, late; US: one image).
PHASES: dict[str, tuple[str, ...]] = {"FA": ("early", "middle", "late"), "ICGA": ("early", "middle", "late"),
                                      "US": ("image",)}
#: Largest number of phase images of any modality.
MAX_PHASES = max(len(p) for p in PHASES.values())
#: Class names, in label order (0 is the majority class of CTI).
CLASSES: tuple[str, ...] = ("choroidal melanoma", "choroidal hemangioma", "choroidal metastatic carcinoma")
#: Short class names for tables and figures.
CLASS_SHORT: tuple[str, ...] = ("melanoma", "hemangioma", "metastasis")


@dataclass
class Cohort:
    """Patients, images, labels and report concepts (see the module docstring).

    Attributes
    ----------
    patients
        Patient ids, str ``[N]`` (unique).
    labels
        Class index into :data:`CLASSES`, int64 ``[N]``.
    split
        ``"cv"`` (takes part in the cross-validation) or ``"test"`` (held out: CTI's ``test.csv``).
    images
        Per modality, uint8 ``[N, P_m, C_m, H, W]``; zeros where an image is missing.
    image_mask
        Per modality, bool ``[N, P_m]``: which phase images exist.
    concept_names
        English concept names ``[K]``, each prefixed by its modality.
    concept_names_zh
        The original (Chinese) names of CTI's concepts, ``""`` for generated ones.
    concept_modality
        Index into :data:`MODALITIES` of each concept's modality, int64 ``[K]``.
    concept_phases
        bool ``[K, MAX_PHASES]``: the phase images in which a reported concept is visible
        (its positives for the concept activation vector).
    reports
        bool ``[N, K]``: the concept is written in the patient's report.
    has_report
        bool ``[N]``: the patient has a report (patients without one never enter the concept bank).
    true_concepts
        Demo only: bool ``[N, K]``, the concepts the generator switched on (before omission from
        the report and before checking that the modality exists).
    p_concept
        Demo only: float ``[n_classes, K]``, the generator's P(concept | class).
    visible
        Demo only: bool ``[K]``, whether the generator draws the concept into the images.
    source
        ``"generated"`` or ``"CTI"``.
    """

    patients: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    images: dict[str, np.ndarray]
    image_mask: dict[str, np.ndarray]
    concept_names: np.ndarray
    concept_names_zh: np.ndarray
    concept_modality: np.ndarray
    concept_phases: np.ndarray
    reports: np.ndarray
    has_report: np.ndarray
    source: str
    true_concepts: np.ndarray | None = None
    p_concept: np.ndarray | None = None
    visible: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_cohort(self)

    @property
    def n_patients(self) -> int:
        """Number of patients."""
        return len(self.patients)

    @property
    def n_concepts(self) -> int:
        """Number of concepts over all modalities."""
        return len(self.concept_names)

    @property
    def available(self) -> np.ndarray:
        """bool ``[N, 3]``: the patient has at least one image of the modality."""
        return np.stack([self.image_mask[m].any(axis=1) for m in MODALITIES], axis=1)

    def concepts_of(self, modality: str) -> np.ndarray:
        """Indices of the concepts of ``modality``."""
        return np.flatnonzero(self.concept_modality == MODALITIES.index(modality))

    def modality_combination(self) -> np.ndarray:
        """Each patient's modalities as a string such as ``"FA+ICGA+US"``."""
        avail = self.available
        return np.array(["+".join(m for m, a in zip(MODALITIES, row) if a) for row in avail])


def check_cohort(cohort: Cohort) -> None:
    """Raise :class:`DataError` naming the field if the arrays do not fit together."""
    n, k = len(cohort.patients), len(cohort.concept_names)
    if len(set(cohort.patients.tolist())) != n:
        raise DataError("cohort: patient ids are not unique")
    expect = {"labels": (n,), "split": (n,), "has_report": (n,), "reports": (n, k), "concept_names_zh": (k,),
              "concept_modality": (k,), "concept_phases": (k, MAX_PHASES)}
    for name, shape in expect.items():
        if getattr(cohort, name).shape != shape:
            raise DataError(f"cohort: {name} has shape {getattr(cohort, name).shape}, expected {shape}")
    for m in MODALITIES:
        img, mask = cohort.images[m], cohort.image_mask[m]
        if img.ndim != 5 or img.shape[:2] != (n, len(PHASES[m])) or mask.shape != img.shape[:2]:
            raise DataError(f"cohort: images[{m}] {img.shape} / image_mask[{m}] {mask.shape} do not match "
                            f"[{n}, {len(PHASES[m])}, C, H, W]")
    if not set(np.unique(cohort.split)) <= {"cv", "test"}:
        raise DataError(f"cohort: split values must be 'cv' or 'test', got {sorted(set(cohort.split))}")
    if (cohort.reports & ~cohort.has_report[:, None]).any():
        raise DataError("cohort: a patient without a report has report concepts")


_ARRAYS = ("patients", "labels", "split", "concept_names", "concept_names_zh", "concept_modality",
           "concept_phases", "reports", "has_report")
_OPTIONAL = ("true_concepts", "p_concept", "visible")


def save_cohort(cohort: Cohort, path: str | Path) -> None:
    """Write the cohort to one ``.npz`` file, atomically."""
    arrays = {name: getattr(cohort, name) for name in _ARRAYS}
    arrays.update({name: getattr(cohort, name) for name in _OPTIONAL if getattr(cohort, name) is not None})
    for m in MODALITIES:
        arrays[f"images_{m}"] = cohort.images[m]
        arrays[f"mask_{m}"] = cohort.image_mask[m]
    arrays["source"] = np.array(cohort.source)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_cohort(path: str | Path) -> Cohort:
    """Read a file written by :func:`save_cohort`."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable cohort file ({err}); delete it and rerun its rule") from err
    with data:
        return Cohort(
            **{name: data[name] for name in _ARRAYS},
            images={m: data[f"images_{m}"] for m in MODALITIES},
            image_mask={m: data[f"mask_{m}"] for m in MODALITIES},
            source=str(data["source"]),
            **{name: data.get(name) for name in _OPTIONAL},
        )


def load_cohort_meta(path: str | Path) -> dict[str, np.ndarray]:
    """Everything of a cohort file but its images (labels, reports, concepts, truth, ``available``)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable cohort file ({err}); delete it and rerun its rule") from err
    with data:
        meta = {name: data[name] for name in (*_ARRAYS, *_OPTIONAL) if name in data.files}
        meta["available"] = np.stack([data[f"mask_{m}"].any(axis=1) for m in MODALITIES], axis=1)
        meta["source"] = np.array(str(data["source"]))
    return meta


def summarise_cohort(cohort: Cohort) -> dict:
    """Counts for the report: classes, modality combinations, reports, concepts per modality."""
    combos, counts = np.unique(cohort.modality_combination(), return_counts=True)
    return {
        "source": cohort.source,
        "n_patients": cohort.n_patients,
        "classes": {c: int((cohort.labels == i).sum()) for i, c in enumerate(CLASSES)},
        "split": {s: int((cohort.split == s).sum()) for s in ("cv", "test")},
        "modality_combinations": {str(c): int(n) for c, n in zip(combos, counts)},
        "patients_with_report": int(cohort.has_report.sum()),
        "concepts": {m: int((cohort.concept_modality == i).sum()) for i, m in enumerate(MODALITIES)},
        "image_shape": {m: list(cohort.images[m].shape[2:]) for m in MODALITIES},
        "reported_concepts_per_report": float(cohort.reports[cohort.has_report].sum(1).mean())
        if cohort.has_report.any() else 0.0,
    }


def run_cohort(settings: dict[str, Any], out_cohort: str, out_summary: str, cti: dict[str, str] | None = None) -> None:
    """Rule ``mmcbm_cohort``: the generated demo cohort, or CTI read from its downloads."""
    if settings["dataset"] == "generated":
        from reprolab.medical.mmcbm_generator import generate_cohort

        cohort = generate_cohort(settings["generator"], settings["generator"]["seed"])
    elif settings["dataset"] == "cti":
        from reprolab.medical.mmcbm_cti import build_cti_cohort

        if cti is None:
            raise ConfigError("papers.mmcbm.dataset: cti needs the CTI downloads (rule inputs)")
        cohort = build_cti_cohort(cti, settings)
    else:
        raise ConfigError(f"papers.mmcbm.dataset must be generated or cti, not {settings['dataset']!r}")
    save_cohort(cohort, out_cohort)
    summary = summarise_cohort(cohort)
    log.info("cohort: %s", summary)
    write_json(out_summary, summary)

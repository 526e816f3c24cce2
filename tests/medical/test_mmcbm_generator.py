"""The mmcbm demo generator: priors, modality frequencies, reports and concept primitives."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.core.errors import DataError
from reprolab.medical.mmcbm_cohort import (
    MODALITIES,
    load_cohort,
    load_cohort_meta,
    save_cohort,
    summarise_cohort,
)
from reprolab.medical.mmcbm_generator import (
    CTI_CLASS_COUNTS,
    CTI_COMBINATIONS,
    DEMO_CONCEPTS,
    Geometry,
    _grid,
    discriminative,
    draw_primitive,
    generate_cohort,
    sample_modalities,
)

SETTINGS = {"n_patients": 600, "image_size": 48, "noise": 0.05, "concept_strength": 0.4, "report_fraction": 0.5,
            "omission": 0.2}


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(SETTINGS, seed=3)


def test_class_prior_and_modalities_follow_cti(cohort):
    prior = np.asarray(CTI_CLASS_COUNTS) / sum(CTI_CLASS_COUNTS)
    freq = np.bincount(cohort.labels, minlength=3) / cohort.n_patients
    assert np.abs(freq - prior).max() < 0.06
    avail = sample_modalities(np.random.default_rng(0), 20000)
    us_only = (avail == [False, False, True]).all(1).mean()
    assert us_only == pytest.approx(CTI_COMBINATIONS[("US",)] / sum(CTI_COMBINATIONS.values()), abs=0.01)
    assert avail.any(1).all()


def test_images_exist_only_for_available_modalities(cohort):
    for mi, m in enumerate(MODALITIES):
        has = cohort.available[:, mi]
        assert (cohort.image_mask[m].all(1) == has).all()
        assert (cohort.images[m][~has] == 0).all() and cohort.images[m][has].std() > 0


def test_reports_are_incomplete_subsets_of_the_truth(cohort):
    visible_to_report = cohort.true_concepts & cohort.available[:, cohort.concept_modality]
    assert not (cohort.reports & ~visible_to_report).any()
    assert not cohort.reports[~cohort.has_report].any()
    kept = cohort.reports[cohort.has_report].sum() / visible_to_report[cohort.has_report].sum()
    assert kept == pytest.approx(1 - SETTINGS["omission"], abs=0.05)


def test_concepts_follow_their_class_conditional_table(cohort):
    for y in range(3):
        observed = cohort.true_concepts[cohort.labels == y].mean(0)
        assert np.abs(observed - cohort.p_concept[y]).max() < 0.2


def test_every_visible_concept_changes_the_image():
    size, n = 48, 4
    yy, xx = _grid(size)
    geo = Geometry(cx=np.zeros(n, np.float32), cy=np.zeros(n, np.float32), radius=np.full(n, 0.35, np.float32))
    for concept in DEMO_CONCEPTS:
        if concept.primitive is None:
            continue
        pattern = draw_primitive(concept.primitive, yy, xx, geo, np.random.default_rng(0), {})
        assert pattern.shape == (n, size, size) and np.abs(pattern).max() > 0.3, concept.name


def test_discriminative_concepts_are_the_class_dependent_ones(cohort):
    disc = discriminative(cohort.p_concept)
    flat = np.ptp(cohort.p_concept, axis=0) == 0
    assert disc.sum() >= 10 and not (disc & flat).any()


def test_same_seed_same_cohort_and_file_round_trip(tmp_path):
    small = {**SETTINGS, "n_patients": 40}
    cohort, again = generate_cohort(small, seed=5), generate_cohort(small, seed=5)
    assert all((cohort.images[m] == again.images[m]).all() for m in MODALITIES)
    save_cohort(cohort, tmp_path / "c.npz")
    back = load_cohort(tmp_path / "c.npz")
    assert (back.reports == cohort.reports).all() and back.source == "generated"
    assert (load_cohort_meta(tmp_path / "c.npz")["available"] == cohort.available).all()
    assert summarise_cohort(back)["n_patients"] == 40


def test_unreadable_cohort_file_names_the_file(tmp_path):
    bad = tmp_path / "cohort.npz"
    bad.write_text("not a zip")
    with pytest.raises(DataError, match="cohort.npz"):
        load_cohort(bad)

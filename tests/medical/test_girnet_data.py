"""The demo's synthetic pathological subjects on MNI152 (coarse grid, seconds)."""

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation

from reprolab.medical.anatomy import BACKGROUND, GREY_MATTER, WHITE_MATTER
from reprolab.medical.girnet_data import (
    SubjectSet,
    build_demo_data,
    demo_atlas,
    grid_affine,
    make_subject,
    read_atlas,
    subject_seeds,
)
from reprolab.medical.registration import NEAREST, folding_fraction, lncc, warp

SETTINGS = {
    "voxel_mm": 8, "shape": [20, 24, 20], "centre_mm": [0, -18, 6],
    "field": {"sigma_mm": 24, "max_velocity_mm": 10, "steps": 7},
    "lesion": {"radius_mm": [16, 20], "roughness": 0.3, "intensity": [0.15, 0.3], "texture": 0.08, "mass_effect_mm": 4},
    "intensity": {"gamma": [0.8, 1.25], "noise": 0.01},
    "subjects": {"pretrain": 2, "train": 2, "test": 1},
}


@pytest.fixture(scope="module")
def atlas():
    return demo_atlas(8, (20, 24, 20), (0, -18, 6))


def test_grid_affine_is_centred():
    affine = grid_affine(4.0, (40, 48, 40), (0.0, -18.0, 6.0))
    centre = affine @ np.array([19.5, 23.5, 19.5, 1.0])
    assert np.allclose(centre[:3], [0, -18, 6]) and np.allclose(np.diag(affine)[:3], 4.0)


def test_atlas_is_skull_stripped_anatomy_on_the_grid(atlas):
    assert atlas.t1.shape == atlas.labels.shape == (20, 24, 20)
    assert set(np.unique(atlas.labels)) >= {BACKGROUND, GREY_MATTER, WHITE_MATTER}
    assert np.all(atlas.t1[atlas.labels == BACKGROUND] == 0)
    assert atlas.t1[atlas.labels == WHITE_MATTER].mean() > atlas.t1[atlas.labels == GREY_MATTER].mean()


def test_a_subject_is_the_atlas_under_its_known_field_plus_a_lesion(atlas):
    s = make_subject(atlas, SETTINGS, seed=3, lesioned=True)
    u = torch.as_tensor(s["u_true"])[None]
    assert folding_fraction(u) == 0.0 and u.abs().max() > 0.5  # a real, diffeomorphic deformation
    # The atlas pulled back by the known field explains the subject far better than the atlas itself.
    y = torch.as_tensor(atlas.t1)[None, None]
    x_normal = torch.as_tensor(s["x_normal"])[None, None]
    assert lncc(warp(y, u), x_normal, 3) > lncc(y, x_normal, 3) + 0.05
    labels = warp(torch.as_tensor(atlas.labels, dtype=torch.float32)[None, None], u, mode=NEAREST)[0, 0].numpy()
    assert np.array_equal(labels.astype(np.uint8), s["labels"])
    lesion = s["lesion"].astype(bool)
    assert lesion.sum() > 10 and np.all(s["labels"][lesion] != BACKGROUND)
    # The lesion is darker than the tissue it replaced; outside it, x is the lesion-free subject.
    assert s["x"][lesion].mean() < s["x_normal"][lesion].mean() - 0.1
    far = ~binary_dilation(lesion, iterations=3) & (s["labels"] != BACKGROUND)
    assert np.allclose(s["x"][far], s["x_normal"][far], atol=0.02)


def test_subjects_are_reproducible_and_splits_do_not_share_seeds(atlas):
    a = make_subject(atlas, SETTINGS, seed=11, lesioned=True)
    b = make_subject(atlas, SETTINGS, seed=11, lesioned=True)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    normal = make_subject(atlas, SETTINGS, seed=11, lesioned=False)
    assert normal["lesion"].sum() == 0 and np.array_equal(normal["x"], normal["x_normal"])
    seeds = {split: set(subject_seeds(7, split, 5)) for split in ("pretrain", "train", "test")}
    assert not (seeds["pretrain"] & seeds["train"]) and not (seeds["train"] & seeds["test"])


def test_build_demo_data_writes_readable_splits(tmp_path):
    out = {k: str(tmp_path / f"{k}.npz") for k in ("atlas", "pretrain", "train", "test")}
    out["summary"] = str(tmp_path / "summary.json")
    summary = build_demo_data(SETTINGS, seed=7, out=out)
    assert summary["train"]["n"] == 2 and summary["train"]["lesion_voxels"] > 0
    assert read_atlas(out["atlas"]).t1.shape == (20, 24, 20)
    test = SubjectSet(out["test"])
    subject = test.get(0)
    assert len(test) == 1 and subject["x"].shape == (1, 1, 20, 24, 20) and subject["u_true"].shape == (1, 3, 20, 24, 20)
    assert subject["labels"].dtype == torch.int64 and subject["lesion"].sum() > 0
    assert SubjectSet(out["pretrain"]).get(1)["lesion"].sum() == 0


def test_demo_misalignment_is_large_enough_for_registration_to_matter():
    """The demo's fields must move tissue by more than a voxel: at ``max_velocity_mm: 1`` (4 mm voxels)
    the warped labels equalled the atlas labels and every arm scored the identity map's Dice."""
    import yaml

    from reprolab.core.config import paper_config
    from reprolab.medical.registration import dice

    config = yaml.safe_load(open("config/papers/girnet.yaml"))
    data = paper_config(config, "girnet", "demo")["data"]
    atlas = demo_atlas(data["voxel_mm"], tuple(data["shape"]), tuple(data["centre_mm"]))
    shifts, dices = [], []
    for seed in subject_seeds(7, "test", 3):
        s = make_subject(atlas, data, seed=seed, lesioned=False)
        brain = atlas.labels != BACKGROUND
        shifts.append(np.linalg.norm(s["u_true"], axis=0)[brain].mean() * data["voxel_mm"])
        dices.append(np.mean([dice(s["labels"] == k, atlas.labels == k) for k in (GREY_MATTER, WHITE_MATTER)]))
    assert np.mean(shifts) > 0.5 * data["voxel_mm"], shifts  # mean displacement beyond half a voxel
    assert np.mean(dices) < 0.9, dices  # without registration, tissue overlap is clearly imperfect

"""Paper-scale data of girnet: folds, crops, pseudo-lesions and split files on tiny NIfTI volumes."""

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from reprolab.core.errors import DataError
from reprolab.core.io import read_json
from reprolab.medical.girnet_data import SubjectSet, read_atlas
from reprolab.medical.girnet_paper import (
    build_paper_index,
    check_fold_sizes,
    crop_or_pad,
    kfold_splits,
    list_subjects,
    paste_lesion,
    split_suffix,
    unit_range,
)

SHAPE = (12, 14, 10)


def _save(path: Path, volume: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(nib.Nifti1Image(volume.astype(np.float32), np.eye(4)).to_bytes()))


@pytest.mark.parametrize(("name", "train", "val"), [("oasis", 340, 85), ("brats_pseudo", 240, 60),
                                                    ("brats_reg", 104, 26), ("stroke_pseudo", 112, 28)])
def test_five_folds_reproduce_the_official_sizes(name, train, val):
    ids = [f"s{i:03d}" for i in range(train + val)]
    folds = kfold_splits(ids, 5, seed=7)
    check_fold_sizes(folds, {"train": train, "val": val}, name)
    assert sorted(i for f in folds for i in f["val"]) == sorted(ids)  # every subject validated once
    assert kfold_splits(list(reversed(ids)), 5, seed=7) == folds  # order of listing does not matter
    assert kfold_splits(ids, 5, seed=8) != folds


def test_wrong_fold_sizes_stop_with_the_key_to_fix():
    with pytest.raises(DataError, match="sets.oasis"):
        check_fold_sizes(kfold_splits([str(i) for i in range(100)], 5, 0), {"train": 340, "val": 85}, "oasis")


def test_crop_centres_and_pads():
    volume = np.arange(10 * 10 * 10, dtype=np.float32).reshape(10, 10, 10)
    out = crop_or_pad(volume, (5, 5, 5), (4, 4, 4))
    assert np.array_equal(out, volume[3:7, 3:7, 3:7])
    padded = crop_or_pad(volume, (1, 5, 5), (6, 4, 4))
    assert padded.shape == (6, 4, 4) and np.all(padded[:2] == 0) and np.array_equal(padded[2:], volume[0:4, 3:7, 3:7])
    with pytest.raises(DataError, match="crop_centre_voxel"):
        crop_or_pad(volume, (50, 5, 5), (4, 4, 4))
    assert unit_range(volume).min() == 0 and unit_range(volume).max() == 1


def test_pasted_lesion_takes_the_recipient_intensities():
    rng = np.random.default_rng(0)
    recipient = 0.5 + 0.1 * rng.random(SHAPE)
    donor = 100 + 50 * rng.random(SHAPE)  # another scanner's scale
    mask = np.zeros(SHAPE)
    mask[3:6, 3:6, 3:6] = 1
    out = paste_lesion(recipient, donor, mask)
    assert np.array_equal(out[mask == 0], recipient[mask == 0].astype(np.float32))
    assert recipient.min() - 1e-6 <= out[mask == 1].min() and out[mask == 1].max() <= recipient.max() + 1e-6
    with pytest.raises(DataError, match="grid"):
        paste_lesion(recipient, donor[:5], mask)


def _fake_archives(root: Path, n_oasis: int, n_brats: int) -> dict[str, str]:
    rng = np.random.default_rng(1)
    for i in range(n_oasis):
        _save(root / "oasis" / f"OAS1_{i:04d}_MR1" / "brain.nii.gz", rng.random(SHAPE))
        _save(root / "oasis" / f"OAS1_{i:04d}_MR1" / "aseg.nii.gz", rng.integers(0, 5, SHAPE))
    for i in range(n_brats):
        case = f"BraTS20_Training_{i:03d}"
        _save(root / "brats" / case / f"{case}_t1.nii.gz", 300 * rng.random(SHAPE))
        seg = np.zeros(SHAPE)
        seg[2:4 + i % 3, 2:5, 2:5] = 1
        _save(root / "brats" / case / f"{case}_seg.nii.gz", seg)
    _save(root / "atlas" / "brain.nii.gz", rng.random(SHAPE))
    _save(root / "atlas" / "aseg.nii.gz", rng.integers(0, 5, SHAPE))
    return {k: str(root / k) for k in ("oasis", "brats", "atlas")}


def test_paper_index_builds_pseudo_lesions_and_the_configured_fold(tmp_path):
    roots = _fake_archives(tmp_path / "data", n_oasis=12, n_brats=11)
    settings = {"data": {"source": "paper", "shape": [8, 8, 8], "crop_centre_voxel": [6, 7, 5], "folds": 5, "fold": 1,
                         "train_set": "brats_pseudo", "sets": {"brats_pseudo": {"train": 8, "val": 2}}}}
    out = {k: str(tmp_path / "out" / f"{k}.json") for k in ("pretrain", "train", "test", "folds")}
    out["atlas"] = str(tmp_path / "out" / "atlas.npz")
    build_paper_index(settings, roots, seed=7, pseudo_dir=str(tmp_path / "pseudo"), out=out)
    assert split_suffix(settings) == ".json"
    folds = read_json(out["folds"])["folds"]
    assert len(folds) == 5 and folds[1]["val"] == [r["id"] for r in read_json(out["test"])["subjects"]]
    train, test = SubjectSet(out["train"]), SubjectSet(out["test"])
    assert len(train) == 8 and len(test) == 2
    subject = train.get(0)
    assert subject["x"].shape == (1, 1, 8, 8, 8) and 0 <= subject["x"].min() and subject["x"].max() <= 1
    assert subject["x_normal"] is not None and subject["u_true"] is None and subject["lesion"].sum() > 0
    # The 10 largest of the 11 donor lesions are used; OASIS brains behind test subjects are not pretrained on.
    test_normals = {r["normal"] for r in read_json(out["test"])["subjects"]}
    assert not test_normals & {r["t1"] for r in read_json(out["pretrain"])["subjects"]}
    assert read_atlas(out["atlas"]).t1.shape == (8, 8, 8)


def test_archive_without_the_expected_files_stops_with_its_name(tmp_path):
    (tmp_path / "oasis" / "OAS1_0001_MR1").mkdir(parents=True)
    with pytest.raises(DataError, match="brain.nii.gz"):
        list_subjects("oasis", str(tmp_path / "oasis"))
    settings = {"data": {"train_set": "brats_reg"}}
    with pytest.raises(DataError, match="not implemented"):
        build_paper_index(settings, {}, 0, str(tmp_path), {})

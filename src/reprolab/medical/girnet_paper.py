"""Paper-scale data of the ``girnet`` DAG: the preprocessed datasets, pseudo-lesions, 5-fold splits.

The paper's subjects are skull-stripped T1 volumes non-linearly registered to the MNI152 1 mm
template with FSL / FreeSurfer (the official ``utils/data_preprocess.py`` and
``T1_2_MNI152_1mm.conf``), centre-cropped to 160 x 192 x 144 around voxel (98, 116, 85).
Those external tools do not run inside this workflow: each preprocessed set is one archive
the user builds once and registers in ``config/datasets.yaml`` (``access: manual``, with the
steps in its ``instructions``); an absent archive stops the workflow with those steps.

Archive layouts (one folder per subject, as the official code reads them):

- ``girnet_atlas``: ``brain.nii.gz``, ``aseg.nii.gz`` (MNI152 symmetric non-linear template, FreeSurfer);
- ``girnet_oasis``: ``<subject>/brain.nii.gz``, ``<subject>/aseg.nii.gz`` (OASIS-1);
- ``girnet_brats``: ``<case>/<case>_t1.nii.gz``, ``<case>/<case>_seg.nii.gz`` (BraTS 2020 training);
- ``girnet_stroke``: ``<subject>/brain.nii.gz``, ``<subject>/seg.nii.gz`` (ATLAS R2.0);
- ``girnet_brats_reg``: ``<case>/{pre,post}_t1.nii.gz``, ``<case>/{pre,post}_landmarks.csv`` (BraTS-Reg).

Pseudo-lesion sets (``simple_pseudo``): a donor lesion (BraTS tumour or ATLAS stroke lesion),
with the donor image histogram-matched to the recipient OASIS brain, pasted into the
recipient; the recipient's aseg stays the anatomical truth and the recipient brain without
the lesion is the inpainting truth. The official pairing is an unseeded ``random.shuffle``;
here it is seeded (``data_seed``).
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.errors import DataError
from reprolab.core.io import atomic_path, read_json, write_json

log = logging.getLogger("reprolab.girnet")

#: Registry dataset of each preprocessed archive, and the archive's file name.
ARCHIVES: dict[str, tuple[str, str]] = {
    "atlas": ("girnet_atlas", "MNI152SymNonLinear.tar"),
    "oasis": ("girnet_oasis", "OASISMNI152NLin.tar"),
    "brats": ("girnet_brats", "BraTS2020MNI152NLin.tar"),
    "stroke": ("girnet_stroke", "StrokeMNI152NLin.tar"),
    "brats_reg": ("girnet_brats_reg", "BraTSRegMNI152NLin.tar"),
}
SET_SOURCES: dict[str, tuple[str, ...]] = {
    "oasis": ("oasis",),
    "brats": ("oasis", "brats"),
    "brats_pseudo": ("oasis", "brats"),
    "stroke_pseudo": ("oasis", "stroke"),
    "brats_reg": ("oasis", "brats_reg"),
}
"""Archives each training set needs besides the atlas (OASIS always: the registration is pretrained on it)."""


def split_suffix(settings: Mapping[str, Any]) -> str:
    """File suffix of the split files: ``.npz`` (demo arrays) or ``.json`` (paper-scale NIfTI lists)."""
    return ".npz" if settings["data"]["source"] == "demo" else ".json"


def needed_archives(settings: Mapping[str, Any]) -> list[str]:
    """Archive keys (of :data:`ARCHIVES`) the configured training set needs, atlas first."""
    train_set = settings["data"]["train_set"]
    return ["atlas", *SET_SOURCES[train_set]]


def crop_or_pad(volume: np.ndarray, centre: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """The ``shape`` box of ``volume`` centred on voxel ``centre`` (zero-padded where it leaves the volume)."""
    out = np.zeros(tuple(shape), dtype=volume.dtype)
    src, dst = [], []
    for c, n, size in zip(centre, volume.shape, shape):
        start = int(c) - size // 2
        lo, hi = max(start, 0), min(start + size, n)
        if hi <= lo:
            raise DataError(f"crop centre {tuple(centre)} with size {tuple(shape)} misses a volume of shape "
                            f"{volume.shape}; check papers.girnet.scales.paper.data.crop_centre_voxel")
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def unit_range(volume: np.ndarray) -> np.ndarray:
    """Min-max scaling to [0, 1] (the intensity normalisation of the official loader)."""
    volume = np.asarray(volume, dtype=np.float32)
    lo, hi = float(volume.min()), float(volume.max())
    return (volume - lo) / (hi - lo) if hi > lo else np.zeros_like(volume)


def _load_nifti(path: str) -> np.ndarray:
    import nibabel as nib

    try:
        return np.asarray(nib.load(path).get_fdata(), dtype=np.float32)
    except FileNotFoundError as err:
        raise DataError(f"{path}: missing; rerun the girnet_paper_* rules (they list the subjects)") from err
    except Exception as err:  # nibabel raises several kinds on truncated or foreign files
        raise DataError(f"{path}: not a readable NIfTI file ({err}); rebuild the archive from the preprocessing") from err


def load_subject(record: Mapping[str, Any], crop: Mapping[str, Any]) -> dict[str, np.ndarray | None]:
    """Arrays of one paper-scale subject: ``x``, ``labels`` (aseg), ``lesion``, ``x_normal`` (or ``None``)."""
    centre, shape = crop["centre"], crop["shape"]

    def get(key: str) -> np.ndarray | None:
        path = record.get(key)
        return None if not path else crop_or_pad(_load_nifti(path), centre, shape)

    x = get("t1")
    normal = get("normal")
    lesion = get("lesion")
    return {"x": unit_range(x), "labels": np.rint(get("labels")).astype(np.int64) if record.get("labels") else
            np.zeros(x.shape, dtype=np.int64),
            "lesion": None if lesion is None else (lesion > 0.5).astype(np.float32),
            "x_normal": None if normal is None else unit_range(normal), "u_true": None}


def read_split_index(path: str) -> dict[str, Any]:
    """A split file: ``{"crop": {centre, shape}, "subjects": [{id, t1, labels, lesion, normal}, ...]}``."""
    index = read_json(path)
    if "subjects" not in index or "crop" not in index:
        raise DataError(f"{path}: not a girnet split index (needs 'subjects' and 'crop'); rerun girnet_paper_splits")
    return index


def kfold_splits(ids: Sequence[str], folds: int, seed: int) -> list[dict[str, list[str]]]:
    """``folds`` train/val splits of ``ids`` (scikit-learn ``KFold``, shuffled with ``seed``)."""
    from sklearn.model_selection import KFold

    ids = sorted(ids)
    out = []
    for train_idx, val_idx in KFold(n_splits=folds, shuffle=True, random_state=seed).split(ids):
        out.append({"train": [ids[i] for i in train_idx], "val": [ids[i] for i in val_idx]})
    return out


def check_fold_sizes(splits: list[dict[str, list[str]]], expected: Mapping[str, int], name: str) -> None:
    """Stop when the regenerated folds do not have the official sizes (card section 4)."""
    got = {"train": len(splits[0]["train"]), "val": len(splits[0]["val"])}
    if got != {"train": int(expected["train"]), "val": int(expected["val"])}:
        raise DataError(f"set {name}: fold 0 has {got['train']} / {got['val']} train / val subjects, the official "
                        f"folds have {expected['train']} / {expected['val']}; check the archive's subjects or "
                        f"papers.girnet.scales.paper.data.sets.{name}")


def paste_lesion(recipient: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray) -> np.ndarray:
    """Pseudo-lesion (``simple_pseudo``): the donor histogram-matched to the recipient, pasted where ``donor_mask``.

    Parameters
    ----------
    recipient
        Lesion-free brain (OASIS), MNI152 grid.
    donor
        Brain with a lesion (BraTS / ATLAS), same grid.
    donor_mask
        The donor's lesion (> 0.5).

    Returns
    -------
    numpy.ndarray
        ``recipient`` with the lesion voxels replaced.
    """
    import torch

    from reprolab.medical.girnet import histogram_match

    if recipient.shape != donor.shape or donor.shape != donor_mask.shape:
        raise DataError(f"pseudo-lesion: recipient {recipient.shape}, donor {donor.shape} and mask "
                        f"{donor_mask.shape} must share the MNI152 grid")
    matched = histogram_match(torch.as_tensor(donor, dtype=torch.float32)[None],
                              torch.as_tensor(recipient, dtype=torch.float32)[None])[0].numpy()
    out = np.array(recipient, dtype=np.float32, copy=True)
    lesion = donor_mask > 0.5
    out[lesion] = matched[lesion]
    return out


def write_split_index(path: str, subjects: list[dict[str, Any]], crop: Mapping[str, Any]) -> None:
    """Write a split file read by :class:`reprolab.medical.girnet_data.SubjectSet`."""
    write_json(path, {"crop": dict(crop), "subjects": subjects})


def subject_folders(root: str | Path) -> list[Path]:
    """Subject folders of an unpacked archive (sorted), descending into a single top folder if there is one."""
    root = Path(root)
    entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(entries) == 1 and any(p.is_dir() for p in entries[0].iterdir()):
        return subject_folders(entries[0])
    return entries


# --------------------------------------------------------------------------- workflow steps


def check_archives(registry: Mapping[str, Any], settings: Mapping[str, Any], data_dir: str) -> list[str]:
    """Paths of the archives the configured training set needs; stop with the registry's steps if one is absent.

    Raises
    ------
    reprolab.core.errors.MissingDataError
        Naming the dataset, the missing file, where to put it and how to build it.
    """
    from reprolab.data.registry import get_dataset, require_available

    paths = []
    for key in needed_archives(settings):
        dataset_id, name = ARCHIVES[key]
        paths.extend(str(p) for p in require_available(get_dataset(registry, dataset_id), data_dir, names=[name]))
    return paths


def unpack_archive(archive: str, dest: str) -> None:
    """The ``girnet_paper_unpack`` rule: extract one preprocessed archive (atomically, with a marker)."""
    from reprolab.data.archives import unpack

    unpack(archive, dest)


def _first(folder: Path, patterns: Sequence[str]) -> str | None:
    for pattern in patterns:
        hits = sorted(folder.glob(pattern))
        if hits:
            return str(hits[0])
    return None


#: File patterns of each archive's subject folders: key -> {field: glob patterns}.
LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "oasis": {"t1": ("brain.nii.gz", "brain.nii"), "labels": ("aseg.nii.gz", "aseg.nii")},
    "brats": {"t1": ("*_t1.nii.gz", "*_t1.nii"), "lesion": ("*_seg.nii.gz", "*_seg.nii")},
    "stroke": {"t1": ("brain.nii.gz", "brain.nii"), "lesion": ("seg.nii.gz", "seg.nii")},
    "brats_reg": {"t1": ("pre_t1.nii.gz",), "post": ("post_t1.nii.gz",), "landmarks": ("pre_landmarks.csv",),
                  "post_landmarks": ("post_landmarks.csv",)},
}


def list_subjects(key: str, root: str) -> list[dict[str, Any]]:
    """Subject records of an unpacked archive (:data:`LAYOUTS`); a subject missing a file stops with its name."""
    records = []
    for folder in subject_folders(root):
        record: dict[str, Any] = {"id": folder.name}
        for field, patterns in LAYOUTS[key].items():
            path = _first(folder, patterns)
            if path is None:
                raise DataError(f"{folder}: no {' or '.join(patterns)} ({key} archive); rebuild the archive as "
                                f"config/datasets.yaml ({ARCHIVES[key][0]}) describes")
            record[field] = path
        records.append(record)
    if not records:
        raise DataError(f"{root}: no subject folders; rebuild {ARCHIVES[key][1]} as config/datasets.yaml describes")
    return records


def lesion_volume(path: str) -> float:
    """Voxels of a lesion mask above 0.5."""
    return float((_load_nifti(path) > 0.5).sum())


def make_pseudo_subjects(recipients: Sequence[Mapping[str, Any]], donors: Sequence[Mapping[str, Any]], n: int,
                         seed: int, out_dir: str) -> list[dict[str, Any]]:
    """The ``girnet_paper_pseudo`` rule's work: ``n`` donor lesions pasted into ``n`` recipient brains.

    Recipients (OASIS) and donors are paired after a seeded shuffle (the official
    ``create_pseudo`` shuffles without a seed); donors are the ``n`` with the largest lesions.
    Each subject's folder gets ``brain.nii.gz`` (with the lesion) and ``seg.nii.gz`` (the lesion);
    its record keeps the recipient's aseg as labels and the recipient brain as the lesion-free truth.
    """
    import nibabel as nib

    if len(recipients) < n or len(donors) < n:
        raise DataError(f"pseudo-lesions: {n} subjects need {n} recipients and donors, got {len(recipients)} and "
                        f"{len(donors)}; check the archives or papers.girnet.scales.paper.data.sets")
    rng = np.random.default_rng(seed)
    by_size = sorted(donors, key=lambda d: lesion_volume(d["lesion"]), reverse=True)[:n]
    donor_order = [by_size[i] for i in rng.permutation(n)]
    recipient_order = [recipients[i] for i in rng.permutation(len(recipients))[:n]]
    records = []
    for recipient, donor in zip(recipient_order, donor_order):
        name = f"{recipient['id']}-{donor['id']}"
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        normal_img = nib.load(recipient["t1"])
        mask = _load_nifti(donor["lesion"])
        pasted = paste_lesion(np.asarray(normal_img.get_fdata(), dtype=np.float32), _load_nifti(donor["t1"]), mask)
        for fname, volume in (("brain.nii.gz", pasted), ("seg.nii.gz", (mask > 0.5).astype(np.uint8))):
            with atomic_path(folder / fname) as tmp:
                tmp.write_bytes(gzip.compress(nib.Nifti1Image(volume, normal_img.affine).to_bytes(), compresslevel=1))
        records.append({"id": name, "t1": str(folder / "brain.nii.gz"), "lesion": str(folder / "seg.nii.gz"),
                        "labels": recipient["labels"], "normal": recipient["t1"]})
    return records


def build_paper_index(settings: Mapping[str, Any], roots: Mapping[str, str], seed: int, pseudo_dir: str,
                      out: Mapping[str, str]) -> None:
    """The ``girnet_paper_splits`` rule: subjects of the training set, its 5-fold split and the split files.

    ``out`` holds ``atlas`` (``.npz`` of the cropped atlas), ``folds`` (JSON of every fold),
    ``pretrain`` / ``train`` / ``test`` (split indices of the configured fold: the fold's
    training subjects, its validation subjects as the test set, and the lesion-free OASIS
    subjects of the fold's training part for pretraining).
    """
    data = settings["data"]
    train_set = data["train_set"]
    if train_set == "brats_reg":
        raise DataError("papers.girnet.scales.paper.data.train_set brats_reg: pairwise registration of pre-operative "
                        "and follow-up scans with landmarks is not implemented; choose oasis, brats, brats_pseudo or "
                        "stroke_pseudo")
    crop = {"centre": list(data["crop_centre_voxel"]), "shape": list(data["shape"])}
    oasis = list_subjects("oasis", roots["oasis"])
    sizes = data["sets"][train_set]
    n = int(sizes["train"]) + int(sizes["val"])
    if train_set == "oasis":
        subjects = oasis
    elif train_set == "brats":
        subjects = [{**r, "labels": None} for r in list_subjects("brats", roots["brats"])]
    else:
        donors = list_subjects("brats" if train_set == "brats_pseudo" else "stroke",
                               roots["brats" if train_set == "brats_pseudo" else "stroke"])
        subjects = make_pseudo_subjects(oasis, donors, n, seed, pseudo_dir)
    if len(subjects) > n:
        subjects = [subjects[i] for i in sorted(np.random.default_rng(seed).permutation(len(subjects))[:n])]
    folds = kfold_splits([s["id"] for s in subjects], int(data["folds"]), seed)
    check_fold_sizes(folds, sizes, train_set)
    write_json(out["folds"], {"set": train_set, "seed": seed, "folds": folds})
    fold = folds[int(data["fold"])]
    by_id = {s["id"]: s for s in subjects}
    write_split_index(out["train"], [by_id[i] for i in fold["train"]], crop)
    write_split_index(out["test"], [by_id[i] for i in fold["val"]], crop)
    used_in_test = {by_id[i].get("normal") for i in fold["val"]}
    write_split_index(out["pretrain"], [s for s in oasis if s["t1"] not in used_in_test], crop)
    write_atlas_npz(roots["atlas"], crop, out["atlas"])


def write_atlas_npz(root: str, crop: Mapping[str, Any], path: str) -> None:
    """The atlas (brain + aseg) cropped like the subjects, in the demo's atlas format."""
    import nibabel as nib

    from reprolab.medical.girnet_data import Atlas, write_atlas

    folder = Path(root)
    brain, aseg = _first(folder, ("brain.nii.gz", "*/brain.nii.gz")), _first(folder, ("aseg.nii.gz", "*/aseg.nii.gz"))
    if brain is None or aseg is None:
        raise DataError(f"{root}: brain.nii.gz and aseg.nii.gz not found; rebuild {ARCHIVES['atlas'][1]}")
    affine = np.asarray(nib.load(brain).affine)
    t1 = unit_range(crop_or_pad(_load_nifti(brain), crop["centre"], crop["shape"]))
    labels = np.rint(crop_or_pad(_load_nifti(aseg), crop["centre"], crop["shape"])).astype(np.uint16)
    write_atlas(path, Atlas(t1=t1, labels=labels, affine=affine))

"""Data of the ``girnet`` DAG: the demo's synthetic pathological subjects on real anatomy.

Demo (card section 4): the atlas ``y`` is nilearn's MNI152 T1 template resampled to a coarse
grid; each moving subject is the atlas pulled back by a random smooth diffeomorphism (known),
optionally deformed by a lesion's mass effect (known), with a synthetic lesion painted in
(known mask), a per-subject intensity change (gamma) and noise inside the brain. The GM / WM
templates, turned into hard tissue labels, follow the same field, so tissue Dice, lesion
Dice, the deformation error and folding are all measured against known truth.

A subject is ``x(p) = y(phi(p))`` outside the lesion, with ``phi(p) = p + u_true(p)``: the
atlas-to-moving field that a registration's ``y -> x`` output must recover.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from reprolab.core.io import atomic_path, write_json
from reprolab.medical.anatomy import BACKGROUND, Anatomy, mni152, tissue_labels
from reprolab.medical.registration import LINEAR, NEAREST, compose, integrate_velocity, random_velocity, warp

log = logging.getLogger("reprolab.girnet")

#: Arrays stored per subject in a split file, with their dtypes.
SUBJECT_ARRAYS = {"x": np.float32, "x_normal": np.float32, "labels": np.uint8, "lesion": np.uint8,
                  "u_true": np.float32}


@dataclass(frozen=True)
class Atlas:
    """The atlas ``y`` on the working grid.

    Attributes
    ----------
    t1
        Intensities in [0, 1], float32 ``[X, Y, Z]``.
    labels
        Tissue labels (``reprolab.medical.anatomy`` values), uint8.
    affine
        Voxel-to-MNI-mm matrix of the grid.
    """

    t1: np.ndarray
    labels: np.ndarray
    affine: np.ndarray

    @property
    def brain(self) -> np.ndarray:
        """Voxels that are not background."""
        return self.labels != BACKGROUND


def grid_affine(voxel_mm: float, shape: tuple[int, int, int], centre_mm: tuple[float, float, float]) -> np.ndarray:
    """Voxel-to-world matrix of an axis-aligned grid of ``shape`` voxels centred on ``centre_mm``."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = np.asarray(centre_mm, dtype=float) - voxel_mm * (np.asarray(shape) - 1) / 2.0
    return affine


def demo_atlas(voxel_mm: float, shape: tuple[int, int, int], centre_mm: tuple[float, float, float]) -> Atlas:
    """nilearn's MNI152 T1 / GM / WM resampled to the working grid (nilearn ``resample_img``).

    Parameters
    ----------
    voxel_mm
        Edge of the cubic voxels (4 mm in the demo).
    shape
        Grid size; a multiple of ``2**levels`` of the U-Nets.
    centre_mm
        MNI coordinates of the grid's centre.
    """
    import nibabel as nib
    from nilearn.image import resample_img

    source = mni152(2 if voxel_mm >= 2 else 1)
    target = grid_affine(voxel_mm, shape, centre_mm)

    def resample(volume: np.ndarray) -> np.ndarray:
        img = nib.Nifti1Image(volume, source.affine)
        out = resample_img(img, target_affine=target, target_shape=tuple(shape), interpolation="continuous",
                           force_resample=True, copy_header=True)
        return np.clip(np.asarray(out.get_fdata(), dtype=np.float32), 0.0, 1.0)

    anatomy = Anatomy(t1=resample(source.t1), gm=resample(source.gm), wm=resample(source.wm), affine=target)
    labels = tissue_labels(anatomy)
    t1 = np.where(labels == BACKGROUND, 0.0, anatomy.t1).astype(np.float32)  # skull-stripped, zero outside
    return Atlas(t1=t1, labels=labels, affine=target)


def _tensor(volume: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(volume), dtype=torch.float32)[None, None]


def _radial_velocity(shape: tuple[int, ...], centre: np.ndarray, radius: float, amplitude: float) -> torch.Tensor:
    """Velocity of a mass effect pulling samples towards ``centre`` (tissue pushed outwards).

    ``v(p) = -amplitude * (p - c) / radius * exp(1/2 - |p - c|^2 / (2 radius^2))``: largest
    (= ``amplitude`` voxels) at ``|p - c| = radius``, vanishing at the centre and far away.
    """
    axes = [torch.arange(s, dtype=torch.float32) for s in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    offset = grid - torch.as_tensor(centre, dtype=torch.float32).view(3, 1, 1, 1)
    r2 = (offset ** 2).sum(0, keepdim=True)
    return (-amplitude / radius * offset * torch.exp(0.5 - r2 / (2 * radius ** 2)))[None]


def _lesion_shape(shape: tuple[int, ...], centre: np.ndarray, radii: np.ndarray, roughness: float,
                  gen: torch.Generator) -> np.ndarray:
    """Soft lesion weight in [0, 1]: an ellipsoid whose boundary is perturbed by smooth noise."""
    from monai.networks.layers import GaussianFilter

    axes = [torch.arange(s, dtype=torch.float32) for s in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    offset = (grid - torch.as_tensor(centre, dtype=torch.float32).view(3, 1, 1, 1))
    rho = torch.sqrt(((offset / torch.as_tensor(radii, dtype=torch.float32).view(3, 1, 1, 1)) ** 2).sum(0))
    noise = GaussianFilter(3, sigma=float(radii.mean()) / 2)(torch.randn((1, 1, *shape), generator=gen))[0, 0]
    noise = noise / noise.abs().max().clamp_min(1e-6)
    level = 1.0 + roughness * noise
    return torch.sigmoid((level - rho) * 6.0).numpy()


def _texture(shape: tuple[int, ...], sigma: float, gen: torch.Generator) -> np.ndarray:
    """Smooth zero-mean noise with unit standard deviation."""
    from monai.networks.layers import GaussianFilter

    noise = GaussianFilter(3, sigma=sigma)(torch.randn((1, 1, *shape), generator=gen))[0, 0]
    return ((noise - noise.mean()) / noise.std().clamp_min(1e-6)).numpy()


def _pick_centre(brain: np.ndarray, min_depth: float, rng: np.random.Generator) -> np.ndarray:
    """A voxel at least ``min_depth`` voxels inside ``brain`` (the deepest voxels if none is)."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(brain)
    candidates = np.argwhere(depth >= min(min_depth, depth.max()))
    return candidates[rng.integers(len(candidates))].astype(np.float64)


def make_subject(atlas: Atlas, settings: Mapping[str, Any], seed: int, lesioned: bool) -> dict[str, np.ndarray]:
    """One synthetic moving subject with its ground truth.

    Parameters
    ----------
    atlas
        From :func:`demo_atlas`.
    settings
        The scale's ``data`` section: ``voxel_mm``, ``field`` (``sigma_mm``, ``max_velocity_mm``,
        ``steps``), ``lesion`` (``radius_mm``, ``roughness``, ``intensity``, ``texture``,
        ``mass_effect_mm``), ``intensity`` (``gamma``, ``noise``).
    seed
        Seed of this subject.
    lesioned
        Paint a lesion (and its mass effect), or return a normal subject.

    Returns
    -------
    dict
        ``x`` (image), ``x_normal`` (the same subject without the lesion: the inpainting
        truth), ``labels`` (tissue labels in moving space), ``lesion`` (0/1 mask),
        ``u_true`` (``[3, X, Y, Z]`` atlas-to-moving DDF in voxels).
    """
    vox = float(settings["voxel_mm"])
    shape = atlas.t1.shape
    gen = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    field = settings["field"]
    velocity = random_velocity(shape, sigma=field["sigma_mm"] / vox, max_velocity=field["max_velocity_mm"] / vox,
                               generator=gen)
    u_true = integrate_velocity(velocity, steps=int(field["steps"]))
    lesion_weight = np.zeros(shape, dtype=np.float32)
    if lesioned:
        les = settings["lesion"]
        radius = rng.uniform(*les["radius_mm"]) / vox
        brain_x = warp(_tensor(atlas.brain.astype(np.float32)), u_true, mode=NEAREST)[0, 0].numpy() > 0.5
        centre = _pick_centre(brain_x, radius * 1.2, rng)
        if les["mass_effect_mm"] > 0:
            push = _radial_velocity(shape, centre, radius, les["mass_effect_mm"] / vox)
            u_true = compose(u_true, integrate_velocity(push, steps=int(field["steps"])))
        radii = radius * rng.uniform(0.75, 1.25, size=3)
        lesion_weight = _lesion_shape(shape, centre, radii, float(les["roughness"]), gen)
    labels = warp(_tensor(atlas.labels.astype(np.float32)), u_true, mode=NEAREST)[0, 0].numpy().astype(np.uint8)
    brain = labels != BACKGROUND
    anatomy = warp(_tensor(atlas.t1), u_true, mode=LINEAR)[0, 0].numpy()
    inten = settings["intensity"]
    gamma = rng.uniform(*inten["gamma"])
    noise = inten["noise"] * rng.standard_normal(shape)
    x_normal = np.clip(np.where(brain, anatomy ** gamma + noise, 0.0), 0.0, 1.0)
    if lesioned:
        les = settings["lesion"]
        base = rng.uniform(*les["intensity"])
        texture = base + les["texture"] * _texture(shape, sigma=1.0, gen=gen)
        lesion_weight = lesion_weight * brain
        x = np.clip(x_normal * (1 - lesion_weight) + texture * lesion_weight, 0.0, 1.0) * brain
    else:
        x = x_normal
    return {"x": x.astype(np.float32), "x_normal": x_normal.astype(np.float32), "labels": labels,
            "lesion": (lesion_weight > 0.5).astype(np.uint8), "u_true": u_true[0].numpy().astype(np.float32)}


def subject_seeds(seed: int, split: str, n: int) -> list[int]:
    """Distinct, reproducible seeds of the ``n`` subjects of a split (pretrain / train / test)."""
    offset = {"pretrain": 0, "train": 1, "test": 2}[split]
    return [int(s) for s in np.random.SeedSequence([int(seed), offset]).generate_state(n)]


def write_split(path: str, subjects: list[dict[str, np.ndarray]], seeds: list[int]) -> None:
    """Stack subjects into one ``.npz`` (arrays of :data:`SUBJECT_ARRAYS` plus ``seeds``), atomically."""
    arrays = {k: np.stack([s[k] for s in subjects]).astype(dtype) for k, dtype in SUBJECT_ARRAYS.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, seeds=np.asarray(seeds, dtype=np.int64), **arrays)


def write_atlas(path: str, atlas: Atlas) -> None:
    """Save the atlas (``t1``, ``labels``, ``affine``) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, t1=atlas.t1, labels=atlas.labels, affine=atlas.affine)


def read_atlas(path: str) -> Atlas:
    """Inverse of :func:`write_atlas`."""
    with np.load(path) as data:
        return Atlas(t1=data["t1"], labels=data["labels"], affine=data["affine"])


def read_split(path: str) -> dict[str, np.ndarray]:
    """Arrays of a split file written by :func:`write_split`."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def build_demo_data(settings: Mapping[str, Any], seed: int, out: Mapping[str, str]) -> dict[str, Any]:
    """The ``girnet_data`` rule at demo / smoke scale: atlas and the three subject splits.

    Parameters
    ----------
    settings
        The scale's ``data`` section (see :func:`make_subject`, plus ``shape``, ``centre_mm``
        and ``subjects``: ``{pretrain, train, test}`` counts).
    seed
        Data seed (subjects are the same for every training seed).
    out
        ``atlas``, ``pretrain``, ``train``, ``test``: destination ``.npz`` files; ``summary``
        (optional): a JSON summary.

    Returns
    -------
    dict
        A summary (grid, counts, mean lesion volume) for the log.
    """
    shape = tuple(int(s) for s in settings["shape"])
    atlas = demo_atlas(float(settings["voxel_mm"]), shape, tuple(settings["centre_mm"]))
    write_atlas(out["atlas"], atlas)
    summary: dict[str, Any] = {"shape": shape, "voxel_mm": settings["voxel_mm"]}
    for split in ("pretrain", "train", "test"):
        seeds = subject_seeds(seed, split, int(settings["subjects"][split]))
        subjects = [make_subject(atlas, settings, s, lesioned=split != "pretrain") for s in seeds]
        write_split(out[split], subjects, seeds)
        summary[split] = {"n": len(seeds), "lesion_voxels": float(np.mean([s["lesion"].sum() for s in subjects]))}
        log.info("%s: %d subjects, mean lesion %.0f voxels", split, len(seeds), summary[split]["lesion_voxels"])
    if "summary" in out:
        write_json(out["summary"], summary)
    return summary


class SubjectSet:
    """The subjects of one split, one at a time as tensors with a batch axis of 1.

    Reads a demo split (``.npz`` of :func:`write_split`, held in memory) or a paper-scale split
    (``.json`` listing NIfTI files, read lazily; see :mod:`reprolab.medical.girnet_paper`).

    Parameters
    ----------
    path
        The split file.
    device
        Where the tensors go.
    """

    def __init__(self, path: str, device: torch.device | str = "cpu") -> None:
        self.path, self.device = str(path), torch.device(device)
        if self.path.endswith(".npz"):
            self._arrays: dict[str, np.ndarray] | None = read_split(self.path)
            self.ids = [str(s) for s in self._arrays["seeds"]]
            self._records: list[dict[str, Any]] = []
        else:
            from reprolab.medical.girnet_paper import read_split_index

            self._arrays, index = None, read_split_index(self.path)
            self._records, self.ids = index["subjects"], [r["id"] for r in index["subjects"]]
            self._crop = index["crop"]

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, i: int) -> dict[str, torch.Tensor | None]:
        """Subject ``i``: ``x`` ``[1, 1, X, Y, Z]``, ``labels`` ``[1, X, Y, Z]`` (int64), ``lesion``
        ``[1, 1, X, Y, Z]`` (0/1, zeros when there is none), ``x_normal`` and ``u_true`` (``[1, 3, X, Y, Z]``)
        or ``None`` where the data have no such truth."""
        if self._arrays is not None:
            a = self._arrays
            arrays = {"x": a["x"][i], "labels": a["labels"][i], "lesion": a["lesion"][i],
                      "x_normal": a["x_normal"][i], "u_true": a["u_true"][i]}
        else:
            from reprolab.medical.girnet_paper import load_subject

            arrays = load_subject(self._records[i], self._crop)
        return _to_tensors(arrays, self.device)


def _to_tensors(arrays: Mapping[str, np.ndarray | None], device: torch.device) -> dict[str, torch.Tensor | None]:
    def t(name: str, channel: bool, dtype: torch.dtype) -> torch.Tensor | None:
        value = arrays.get(name)
        if value is None:
            return None
        tensor = torch.as_tensor(np.asarray(value)).to(dtype)
        return (tensor[None, None] if channel else tensor[None]).to(device)

    out = {"x": t("x", True, torch.float32), "labels": t("labels", False, torch.int64),
           "lesion": t("lesion", True, torch.float32), "x_normal": t("x_normal", True, torch.float32),
           "u_true": t("u_true", False, torch.float32)}
    if out["lesion"] is None:
        out["lesion"] = torch.zeros_like(out["x"])
    return out

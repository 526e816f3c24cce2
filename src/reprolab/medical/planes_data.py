"""Data of the ``planes`` paper: studies of anatomy-oriented imaging planes with DICOM geometry.

Zhang et al., "Self-Supervised Learning for Medical Image Data with Anatomy-Oriented Imaging
Planes", MedIA 94 (2024) 103151, arXiv:2403.16499. Every source becomes a list of
:class:`Study`: one subject's parallel short-axis (SAX) images, each with its own
:class:`~reprolab.medical.geometry.Plane` (IPP, IOP, PixelSpacing), and its long-axis images
(2CH, 4CH), so that the pretext targets and the segmentation inputs are computed by one code path
(:mod:`reprolab.medical.planes`) whatever the source:

- demo: nilearn's MNI152 T1 template under a seeded smooth deformation and intensity change per
  synthetic "subject", resliced on a stack of parallel oblique planes and on two long-axis
  planes (:func:`synthesise_demo`), stored as arrays of the
  DICOM fields (:func:`save_demo` / :func:`load_demo`), with tissue labels for segmentation;
- paper scale, pretraining: the Kaggle Second Annual Data Science Bowl cine CMR DICOM series
  (``<patient>/study/{sax_*, 2ch_*, 4ch_*}/*.dcm``, :func:`read_dsb2`);
- paper scale, segmentation: ACDC NIfTI volumes at ED and ES with labels (:func:`read_acdc`).
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.errors import DataError
from reprolab.core.io import atomic_path
from reprolab.medical.geometry import Plane, planes_of_volume

log = logging.getLogger("reprolab.planes")

#: The two long-axis views whose intersecting lines are regressed (heatmap channels, in order).
LAX_VIEWS: tuple[str, str] = ("2ch", "4ch")
#: Roles of subjects: pretraining (train / val for model selection / test for the pretext figures)
#: and segmentation (train = the labelled pool the budgets draw from, val, test).
ROLES: tuple[str, ...] = ("pretrain", "pretrain_val", "pretrain_test", "train", "val", "test")


@dataclass
class PlaneImage:
    """One 2-D image (possibly cine: several frames at one position) with its geometry.

    Attributes
    ----------
    plane
        Geometry shared by every frame.
    pixels
        ``[frames, rows, cols]`` float32 intensities.
    label
        ``[rows, cols]`` uint8 segmentation, or ``None`` (unlabelled).
    """

    plane: Plane
    pixels: np.ndarray
    label: np.ndarray | None = None


@dataclass
class Study:
    """The images of one subject (at one cardiac phase, for labelled cardiac data).

    Attributes
    ----------
    subject
        Subject / patient identifier.
    role
        One of :data:`ROLES`.
    sax
        Short-axis images: parallel planes, any order.
    lax
        Long-axis images by view (``"2ch"``, ``"4ch"``); may be empty for segmentation data.
    phase
        ``""`` or the cardiac phase of a labelled volume (``"ED"``, ``"ES"``).
    """

    subject: str
    role: str
    sax: list[PlaneImage]
    lax: dict[str, PlaneImage] = field(default_factory=dict)
    phase: str = ""


# --------------------------------------------------------------------------- demo synthesis


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation of ``v`` about the unit ``axis`` by ``angle`` radians."""
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * (axis @ v) * (1 - np.cos(angle))


def _tilted_axis(rng: np.random.Generator, max_tilt_deg: float) -> np.ndarray:
    """A unit vector within ``max_tilt_deg`` of superior (+z), uniform in azimuth."""
    tilt, azimuth = np.radians(rng.uniform(0, max_tilt_deg)), rng.uniform(0, 2 * np.pi)
    return np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt)])


def _centred_plane(centre: np.ndarray, x: np.ndarray, y: np.ndarray, spacing: Sequence[float], rows: int,
                   cols: int) -> Plane:
    """The plane with row direction ``x``, column direction ``y``, whose image is centred on ``centre``."""
    dy, dx = spacing
    origin = centre - (cols - 1) / 2 * dx * x - (rows - 1) / 2 * dy * y
    return Plane.from_dicom(origin, np.concatenate([x, y]), (dy, dx), rows, cols)


def brain_centre(anatomy) -> np.ndarray:
    """World position (mm) of the centre of mass of grey plus white matter."""
    from scipy.ndimage import center_of_mass

    index = np.asarray(center_of_mass(anatomy.gm + anatomy.wm))
    return anatomy.affine[:3, :3] @ index + anatomy.affine[:3, 3]


def synthesise_demo(anatomy, labels: np.ndarray, spec: Mapping[str, Any]) -> list[Study]:
    """Demo subjects: the MNI152 template, deformed per subject, resliced on anatomy-oriented planes.

    Each subject is the template under its own seeded smooth diffeomorphic deformation
    (:func:`subject_deformation`: a random stationary velocity field of largest magnitude
    ``deformation.magnitude_mm`` and spatial scale ``deformation.smoothness_mm``, integrated by
    scaling and squaring), after a per-axis scaling about the brain centre by ``1 +- scale``;
    its intensities get a per-subject contrast change (gamma in ``intensity.gamma``), a smooth
    multiplicative bias field (log-amplitude up to ``intensity.bias``) and Gaussian noise
    (``noise``). Labels are the template's tissue labels pulled back through the same map
    (nearest neighbour), so they stay aligned with the image. Its "long axis" is a direction
    within ``axis_tilt_deg`` of superior through the brain centre (jittered by
    ``centre_jitter_mm``). The SAX-like stack has ``slices`` parallel planes perpendicular to
    that axis at offsets spanning ``coverage_mm`` (shared IOP, rotated in-plane by up to
    ``inplane_deg``, the field of view shifted by up to ``shift_mm``); the two long-axis planes
    contain the axis, the 4CH-like one the left-right direction and the 2CH-like one turned
    ``lax_angle_deg`` from it (each jittered by ``lax_jitter_deg``), as 2CH and 4CH views contain
    the left ventricle's long axis. Their intersecting lines with the SAX images and the slice
    positions follow from the plane geometry, which is what the pretext tasks learn from.

    Parameters
    ----------
    anatomy
        :class:`reprolab.medical.anatomy.Anatomy`.
    labels
        Tissue labels on the anatomy's grid (:func:`reprolab.medical.anatomy.tissue_labels`).
    spec
        ``papers.planes.<scale>.data.demo`` of the config.

    Returns
    -------
    list of Study
        One per subject, roles in the order of ``spec["subjects"]``.
    """
    rng = np.random.default_rng(spec["seed"])
    acq = spec["acquisition"]
    rows, cols, spacing = acq["rows"], acq["cols"], tuple(acq["pixel_spacing"])
    centre0 = brain_centre(anatomy)
    studies = []
    for role in ROLES:
        for _ in range(spec["subjects"].get(role, 0)):
            sid = f"demo{len(studies):03d}"
            subject = _subject_appearance(anatomy, labels, centre0, spec, rng)
            studies.append(_demo_subject(sid, role, subject, centre0, rows, cols, spacing, spec, rng))
    return studies


@dataclass
class DeformedSubject:
    """One synthetic subject: the template seen through a world-space map, with its intensity changes.

    Attributes
    ----------
    anatomy
        The template (:class:`reprolab.medical.anatomy.Anatomy`).
    labels
        Tissue labels on the template's grid.
    affine
        The subject's voxel-to-world matrix before the deformation (the per-axis scaling).
    field
        :class:`DeformationField` of the subject (world mm), or ``None`` (no deformation).
    gamma
        Contrast exponent applied to the template's [0, 1] intensities.
    bias
        ``(centre, coefficients)`` of the log bias field, a quadratic polynomial of the
        position (see :func:`bias_field`).
    noise
        Standard deviation of the added Gaussian noise.
    """

    anatomy: Any
    labels: np.ndarray
    affine: np.ndarray
    field: DeformationField | None
    gamma: float
    bias: tuple[np.ndarray, np.ndarray]
    noise: float

    def sample(self, plane: Plane, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Image ``[1, rows, cols]`` (float32) and labels ``[rows, cols]`` (uint8) of this subject on ``plane``."""
        world = plane.pixel_centres().reshape(-1, 3)
        pulled = world if self.field is None else world + self.field.displacement(world)
        t1 = sample_points(self.anatomy.t1, self.affine, pulled, order=1)
        label = sample_points(self.labels, self.affine, pulled, order=0)
        image = np.clip(t1, 0.0, 1.0) ** self.gamma * bias_field(world, *self.bias)
        image = image + self.noise * rng.standard_normal(image.shape)
        shape = (plane.rows, plane.cols)
        return image.reshape(1, *shape).astype(np.float32), label.reshape(shape).astype(np.uint8)


@dataclass
class DeformationField:
    """A displacement field in world millimetres on a regular grid (pull-back: ``p -> p + u(p)``).

    Attributes
    ----------
    origin
        World position (mm) of grid index ``(0, 0, 0)``.
    spacing_mm
        Grid spacing (isotropic).
    ddf
        ``[3, X, Y, Z]`` displacement in mm (world axes).
    """

    origin: np.ndarray
    spacing_mm: float
    ddf: np.ndarray

    def displacement(self, world: np.ndarray) -> np.ndarray:
        """``u(p)`` at world points ``[n, 3]`` (trilinear; 0 outside the grid)."""
        from scipy.ndimage import map_coordinates

        index = ((np.asarray(world, dtype=float) - self.origin) / self.spacing_mm).T
        return np.stack([map_coordinates(c, index, order=1, mode="constant", cval=0.0) for c in self.ddf], axis=1)


def sample_points(volume: np.ndarray, affine: np.ndarray, world: np.ndarray, order: int = 1) -> np.ndarray:
    """Values of ``volume`` (voxel-to-world ``affine``) at world points ``[n, 3]`` (0 outside; 0 = nearest)."""
    from scipy.ndimage import map_coordinates

    inverse = np.linalg.inv(np.asarray(affine, dtype=float))
    index = np.asarray(world, dtype=float) @ inverse[:3, :3].T + inverse[:3, 3]
    return map_coordinates(volume, index.T, order=order, mode="constant", cval=0.0, prefilter=False)


def subject_deformation(anatomy, magnitude_mm: float, smoothness_mm: float, steps: int,
                        seed: int) -> DeformationField | None:
    """A seeded smooth diffeomorphic deformation of the template's field of view.

    A stationary velocity field (:func:`reprolab.medical.registration.random_velocity`:
    Gaussian-filtered noise of width ``smoothness_mm``, scaled so that its largest magnitude is
    ``magnitude_mm``) on a grid of spacing ``smoothness_mm / 3`` covering the template is
    integrated by scaling and squaring (:func:`reprolab.medical.registration.integrate_velocity`,
    ``steps`` squarings), which gives an invertible map.

    Parameters
    ----------
    anatomy
        The template; its bounding box (plus ``2 * smoothness_mm``) is the field's grid.
    magnitude_mm
        Largest velocity magnitude, mm (about the largest displacement); 0 = no deformation.
    smoothness_mm
        Spatial scale (Gaussian sigma) of the velocity field, mm.
    steps
        Scaling-and-squaring steps.
    seed
        Seed of the velocity field.

    Returns
    -------
    DeformationField or None
        ``None`` when ``magnitude_mm`` is 0.
    """
    import torch

    from reprolab.medical.registration import integrate_velocity, random_velocity

    if magnitude_mm < 0 or smoothness_mm <= 0:
        raise ValueError(f"deformation magnitude_mm must be >= 0 and smoothness_mm > 0, got {magnitude_mm}, "
                         f"{smoothness_mm} (papers.planes.<scale>.data.demo.deformation)")
    if magnitude_mm == 0:
        return None
    corners = np.array([[i, j, k, 1.0] for i in (0, anatomy.t1.shape[0] - 1) for j in (0, anatomy.t1.shape[1] - 1)
                        for k in (0, anatomy.t1.shape[2] - 1)]) @ anatomy.affine.T
    spacing = smoothness_mm / 3.0
    lo = corners[:, :3].min(axis=0) - 2 * smoothness_mm
    shape = tuple(int(n) for n in np.ceil((corners[:, :3].max(axis=0) + 2 * smoothness_mm - lo) / spacing) + 1)
    generator = torch.Generator().manual_seed(int(seed))
    velocity = random_velocity(shape, sigma=3.0, max_velocity=magnitude_mm / spacing, generator=generator)
    ddf = integrate_velocity(velocity, steps=int(steps))[0].numpy().astype(np.float64) * spacing
    return DeformationField(origin=lo, spacing_mm=spacing, ddf=ddf)


def bias_field(world: np.ndarray, centre: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Smooth multiplicative bias ``exp(c . [x, y, z, x^2, y^2, z^2, xy, xz, yz])`` at world points ``[n, 3]``.

    Positions are taken relative to ``centre`` in units of 100 mm (about a head's half-width),
    so coefficients of size ``b`` change the intensity by about ``exp(+-b)`` across the head.
    """
    x, y, z = ((np.asarray(world, dtype=float) - centre) / 100.0).T
    terms = np.stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z])
    return np.exp(np.asarray(coefficients) @ terms)


def _subject_appearance(anatomy, labels: np.ndarray, centre0: np.ndarray, spec: Mapping[str, Any],
                        rng: np.random.Generator) -> DeformedSubject:
    """Draw one subject's scaling, deformation, contrast, bias field and noise level."""
    scale = 1 + rng.uniform(-spec["scale"], spec["scale"], size=3)
    warp = np.eye(4)
    warp[:3, :3] = np.diag(scale)
    warp[:3, 3] = centre0 - scale * centre0
    deformation, intensity = spec["deformation"], spec["intensity"]
    field = subject_deformation(anatomy, deformation["magnitude_mm"], deformation["smoothness_mm"],
                                deformation["steps"], int(rng.integers(2**31)))
    gamma = float(np.exp(rng.uniform(-1, 1) * np.log(intensity["gamma"])))
    coefficients = rng.uniform(-intensity["bias"], intensity["bias"], size=9)
    return DeformedSubject(anatomy, labels, warp @ anatomy.affine, field, gamma, (centre0, coefficients), spec["noise"])


def _demo_subject(sid: str, role: str, subject: DeformedSubject, centre0: np.ndarray, rows: int, cols: int,
                  spacing: tuple[float, float], spec: Mapping[str, Any], rng: np.random.Generator) -> Study:
    centre = centre0 + rng.normal(scale=spec["centre_jitter_mm"], size=3)
    axis = _tilted_axis(rng, spec["axis_tilt_deg"])
    left_right = _unit(np.array([1.0, 0, 0]) - axis[0] * axis)
    # SAX: normal = axis; X, Y turned in-plane; X x Y = axis
    theta = np.radians(rng.uniform(-spec["inplane_deg"], spec["inplane_deg"]))
    x = _rotate(left_right, axis, theta)
    y = np.cross(axis, x)
    shift = rng.uniform(-spec["shift_mm"], spec["shift_mm"], size=2) @ np.stack([x, y])
    lo, hi = spec["coverage_mm"]
    sax = []
    for offset in np.linspace(lo, hi, spec["slices"]):
        plane = _centred_plane(centre + offset * axis + shift, x, y, spacing, rows, cols)
        sax.append(PlaneImage(plane, *subject.sample(plane, rng)))
    lax = {}
    for view, angle in (("4ch", 0.0), ("2ch", spec["lax_angle_deg"])):
        in_plane = _rotate(left_right, axis, np.radians(angle + rng.uniform(-1, 1) * spec["lax_jitter_deg"]))
        plane = _centred_plane(centre + (lo + hi) / 2 * axis, in_plane, -axis, spacing, rows, cols)
        lax[view] = PlaneImage(plane, subject.sample(plane, rng)[0])
    return Study(sid, role, sax, lax)


# --------------------------------------------------------------------------- demo storage

_PLANE_FIELDS = ("ipp", "iop", "pixel_spacing")


def _plane_fields(images: Iterable[PlaneImage]) -> dict[str, np.ndarray]:
    planes = [im.plane for im in images]
    return {"ipp": np.stack([p.ipp for p in planes]), "iop": np.stack([p.iop for p in planes]),
            "pixel_spacing": np.array([p.pixel_spacing for p in planes])}


def save_demo(studies: Sequence[Study], path: str | Path) -> None:
    """Store demo studies as arrays of pixels and DICOM geometry fields (IPP, IOP, PixelSpacing).

    Every study must have the same number of SAX images, the same image size and both long-axis
    views; this is how :func:`synthesise_demo` makes them.
    """
    arrays: dict[str, np.ndarray] = {
        "subject": np.array([s.subject for s in studies]), "role": np.array([s.role for s in studies]),
        "sax_pixels": np.stack([[im.pixels for im in s.sax] for s in studies]),
        "sax_label": np.stack([[im.label for im in s.sax] for s in studies]).astype(np.uint8),
        "lax_pixels": np.stack([[s.lax[v].pixels for v in LAX_VIEWS] for s in studies]),
    }
    for key in _PLANE_FIELDS:
        arrays[f"sax_{key}"] = np.stack([_plane_fields(s.sax)[key] for s in studies])
        arrays[f"lax_{key}"] = np.stack([_plane_fields([s.lax[v] for v in LAX_VIEWS])[key] for s in studies])
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_demo(path: str | Path) -> list[Study]:
    """Read the studies written by :func:`save_demo`, rebuilding every plane from its DICOM fields."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable demo plane file ({err}); delete it and rerun planes_demo_planes") from err
    rows, cols = arrays["sax_pixels"].shape[-2:]

    def image(prefix: str, s: int, k: int, label: np.ndarray | None = None) -> PlaneImage:
        plane = Plane.from_dicom(arrays[f"{prefix}_ipp"][s, k], arrays[f"{prefix}_iop"][s, k],
                                 arrays[f"{prefix}_pixel_spacing"][s, k], rows, cols)
        return PlaneImage(plane, arrays[f"{prefix}_pixels"][s, k], label)

    return [Study(str(sid), str(role),
                  [image("sax", s, k, arrays["sax_label"][s, k]) for k in range(arrays["sax_pixels"].shape[1])],
                  {v: image("lax", s, j) for j, v in enumerate(LAX_VIEWS)})
            for s, (sid, role) in enumerate(zip(arrays["subject"], arrays["role"], strict=True))]


def make_demo(spec: Mapping[str, Any], out_path: str | Path) -> None:
    """The ``planes_demo_planes`` rule: synthesise the demo studies from MNI152 and store them."""
    from reprolab.medical.anatomy import mni152, tissue_labels

    anatomy = mni152(spec["resolution_mm"])
    studies = synthesise_demo(anatomy, tissue_labels(anatomy), spec)
    save_demo(studies, out_path)
    log.info("wrote %d demo subjects (%s) to %s", len(studies),
             {r: sum(s.role == r for s in studies) for r in ROLES}, out_path)


# --------------------------------------------------------------------------- splits


def assign_roles(subjects: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """A seeded subject-level split: ``{subject: role}`` with role shares given by ``fractions``.

    Every role but the first gets ``round(share * n)`` subjects; the first takes the remainder.
    """
    order = np.random.default_rng(seed).permutation(sorted(subjects))
    roles = list(fractions)
    counts = {r: int(np.round(fractions[r] * len(order))) for r in roles[1:]}
    counts[roles[0]] = len(order) - sum(counts.values())
    out, start = {}, 0
    for role in roles:
        for sid in order[start:start + counts[role]]:
            out[str(sid)] = role
        start += counts[role]
    return out


# --------------------------------------------------------------------------- archives


def unpack_dataset(archive: str | Path, marker: str | Path) -> None:
    """The ``planes_unpack`` rule: unpack a DSB2 or ACDC archive, and the zips inside it.

    The archive goes to ``<folder>/archive``; every ``.zip`` found inside it (the competition's
    ``train.zip``, ``validate.zip``, ``test.zip``) to ``<folder>/<zip name>``; ``marker``
    (``<folder>/.complete``) is written last, so an interrupted job leaves no finished-looking folder.
    """
    from reprolab.data.archives import unpack

    folder = Path(marker).parent
    outer = unpack(archive, folder / "archive")
    for inner in sorted(outer.rglob("*.zip")):
        unpack(inner, folder / inner.stem)
    with atomic_path(marker) as tmp:
        tmp.write_text(f"{Path(archive).name}\n")


# --------------------------------------------------------------------------- DSB2 (DICOM)

_SERIES = re.compile(r"^(sax|2ch|4ch)_\d+$")


def _read_series(folder: Path, max_frames: int) -> list[PlaneImage]:
    """One DICOM series folder as images, one per distinct slice position (cine frames stacked).

    Some DSB2 SAX folders hold two slice positions; they are split by ImagePositionPatient.
    ``max_frames`` evenly spaced frames are kept (the first always).
    """
    import pydicom

    files = sorted(folder.glob("*.dcm"))
    if not files:
        return []
    headers = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
            headers.append((tuple(np.round(np.asarray(ds.ImagePositionPatient, dtype=float), 2)),
                            int(getattr(ds, "InstanceNumber", 0) or 0), ds))
        except (pydicom.errors.InvalidDicomError, AttributeError, OSError) as err:
            raise DataError(f"{f}: not a readable DICOM image with ImagePositionPatient ({err}); "
                            "re-download the DSB2 archive") from err
    images = []
    for position in sorted({h[0] for h in headers}):
        frames = sorted((h for h in headers if h[0] == position), key=lambda h: h[1])
        keep = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
        first = frames[0][2]
        plane = Plane.from_dicom(first.ImagePositionPatient, first.ImageOrientationPatient, first.PixelSpacing,
                                 int(first.Rows), int(first.Columns))
        pixels = np.stack([_dicom_pixels(frames[i][2]) for i in keep])
        images.append(PlaneImage(plane, pixels))
    return images


def _dicom_pixels(ds) -> np.ndarray:
    """Stored values mapped through RescaleSlope / RescaleIntercept, float32 (no uint8 cast: card, section 7)."""
    slope, intercept = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
    return (ds.pixel_array.astype(np.float32) * slope + intercept).astype(np.float32)


def find_dsb2_patients(root: str | Path) -> dict[str, Path]:
    """``{patient id: <patient>/study folder}`` for every DSB2 study below ``root`` (train, validate, test)."""
    root = Path(root)
    found = {}
    for study in sorted(root.rglob("study")):
        if study.is_dir() and any(_SERIES.match(p.name) for p in study.iterdir()):
            found[f"{study.parent.parent.name}_{study.parent.name}"] = study
    return found


def read_dsb2(root: str | Path, fractions: Mapping[str, float], seed: int, max_frames: int,
              limit: int | None = None) -> list[Study]:
    """Read the DSB2 DICOM studies below ``root`` with a seeded patient split.

    Patients without at least one SAX, one 2CH and one 4CH series are skipped (as in the
    official preprocessing); the first 2CH and 4CH series (in name order) give the long-axis
    planes.

    Parameters
    ----------
    root
        Folder holding the unpacked competition archives.
    fractions
        ``{"pretrain": f, "pretrain_val": f, "pretrain_test": f}``.
    seed
        Seed of the split.
    max_frames
        Cine frames kept per SAX position.
    limit
        Read only the first ``limit`` patients (in id order), for tests.

    Raises
    ------
    DataError
        If no study folder is found, naming the folder and the layout expected.
    """
    patients = find_dsb2_patients(root)
    if not patients:
        raise DataError(f"{root}: no DSB2 study folders (<patient>/study/sax_*/*.dcm); unpack the Kaggle archive "
                        "(and its train/validate/test zips) there")
    ids = sorted(patients)[:limit] if limit else sorted(patients)
    usable: dict[str, dict[str, list[Path]]] = {}
    for pid in ids:
        series = sorted(p for p in patients[pid].iterdir() if _SERIES.match(p.name))
        kinds = {k: [p for p in series if p.name.startswith(k + "_")] for k in ("sax", *LAX_VIEWS)}
        if all(kinds.values()):
            usable[pid] = kinds
    roles = assign_roles(list(usable), fractions, seed)
    studies = []
    for pid, kinds in usable.items():
        sax = [im for folder in kinds["sax"] for im in _read_series(folder, max_frames)]
        lax = {v: _read_series(kinds[v][0], 1)[0] for v in LAX_VIEWS}
        studies.append(Study(pid, roles[pid], sax, lax))
    skipped = [pid for pid in ids if pid not in usable]
    log.info("DSB2: %d patients read, %d skipped without SAX, 2CH and 4CH series", len(studies), len(skipped))
    return studies


# --------------------------------------------------------------------------- ACDC (NIfTI)


def _acdc_info(path: Path) -> dict[str, str]:
    try:
        return dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    except OSError as err:
        raise DataError(f"{path}: unreadable ACDC Info.cfg ({err}); re-download ACDC") from err


def find_acdc_patients(root: str | Path) -> dict[str, tuple[Path, str]]:
    """``{patient id: (folder, "training" | "testing")}`` for every ACDC patient below ``root``."""
    root, found = Path(root), {}
    for info in sorted(root.rglob("patient*/Info.cfg")):
        parents = info.relative_to(root).parts[:-2]
        part = "testing" if any(p.lower().startswith("test") for p in parents) else "training"
        found[info.parent.name] = (info.parent, part)
    return found


def read_acdc(root: str | Path, fractions: Mapping[str, float], seed: int, limit: int | None = None) -> list[Study]:
    """ACDC volumes at ED and ES with labels (0 background, 1 RV, 2 MYO, 3 LV).

    The official training patients are split (seeded) into the labelled pool ``train`` and
    ``val`` (model selection) by ``fractions``; the official testing patients are ``test``.
    Each (patient, phase) is one study whose SAX images are the volume's slices.

    Raises
    ------
    DataError
        If no patient folder is found, or a frame or its ``_gt`` file is missing.
    """
    import nibabel as nib

    patients = find_acdc_patients(root)
    if not patients:
        raise DataError(f"{root}: no ACDC patient folders (patientNNN/Info.cfg); unpack the ACDC archive there")
    ids = sorted(patients)[:limit] if limit else sorted(patients)
    training = [p for p in ids if patients[p][1] == "training"]
    roles = {**assign_roles(training, fractions, seed), **{p: "test" for p in ids if patients[p][1] == "testing"}}
    studies = []
    for pid in ids:
        folder = patients[pid][0]
        info = _acdc_info(folder / "Info.cfg")
        for phase in ("ED", "ES"):
            frame = int(info[phase].strip())
            image_path = folder / f"{pid}_frame{frame:02d}.nii.gz"
            label_path = folder / f"{pid}_frame{frame:02d}_gt.nii.gz"
            if not image_path.exists() or not label_path.exists():
                raise DataError(f"{folder}: {image_path.name} or {label_path.name} is missing; re-download ACDC")
            img, lab = nib.load(image_path), nib.load(label_path)
            volume = np.asarray(img.get_fdata(), dtype=np.float32)
            labels = np.asarray(lab.get_fdata()).round().astype(np.uint8)
            planes = planes_of_volume(img.affine, volume.shape)
            sax = [PlaneImage(p, volume[None, :, :, k], labels[:, :, k]) for k, p in enumerate(planes)]
            studies.append(Study(pid, roles[pid], sax, {}, phase))
    return studies

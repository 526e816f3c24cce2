"""Real anatomy available offline: nilearn's MNI152 templates (T1, grey and white matter).

The demo scale of the medical papers runs on these templates, which ship inside the
nilearn package (no download): the ICBM 2009a nonlinear symmetric MNI152 T1 template and
its grey- and white-matter probability maps (Fonov et al., NeuroImage 54:313, 2011).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Tissue label values used by every medical demo.
BACKGROUND, GREY_MATTER, WHITE_MATTER, OTHER = 0, 1, 2, 3
TISSUE_NAMES: dict[int, str] = {BACKGROUND: "background", GREY_MATTER: "grey matter",
                                WHITE_MATTER: "white matter", OTHER: "other tissue"}


@dataclass(frozen=True)
class Anatomy:
    """One MNI152 volume set on a common voxel grid.

    Attributes
    ----------
    t1
        T1-weighted intensities in [0, 1], float32 ``[X, Y, Z]``.
    gm, wm
        Grey- and white-matter probabilities in [0, 1], float32, same grid.
    affine
        4 x 4 voxel-to-world (MNI mm, RAS+) matrix.
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    affine: np.ndarray

    @property
    def voxel_mm(self) -> tuple[float, ...]:
        """Voxel edge lengths in mm (column norms of the affine)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))


def mni152(resolution_mm: int = 1) -> Anatomy:
    """Load nilearn's MNI152 T1, GM and WM templates at ``resolution_mm`` (1 or 2 mm).

    Parameters
    ----------
    resolution_mm
        1 (197 x 233 x 189 voxels) or 2 (99 x 117 x 95, nilearn's resampling).

    Returns
    -------
    Anatomy
        The three volumes as float32 arrays on one grid.
    """
    from nilearn import datasets

    if resolution_mm not in (1, 2):
        raise ValueError(f"resolution_mm must be 1 or 2 (nilearn's MNI152 grids), not {resolution_mm!r}")
    t1, gm, wm = (loader(resolution=resolution_mm) for loader in (
        datasets.load_mni152_template, datasets.load_mni152_gm_template, datasets.load_mni152_wm_template))
    return Anatomy(t1=_unit_range(t1.get_fdata()), gm=_unit_range(gm.get_fdata()),
                   wm=_unit_range(wm.get_fdata()), affine=np.asarray(t1.affine, dtype=float))


def _unit_range(volume: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(volume, dtype=np.float32), 0.0, 1.0)


def tissue_labels(anatomy: Anatomy, head_threshold: float = 0.05) -> np.ndarray:
    """Hard tissue labels: background, grey matter, white matter, other tissue.

    A voxel whose T1 intensity exceeds ``head_threshold`` is labelled grey or white matter
    when that probability is the larger one and at least 0.5 in total with the other,
    otherwise "other tissue" (CSF, non-brain tissue); the rest is background.

    Parameters
    ----------
    anatomy
        Volumes from :func:`mni152`.
    head_threshold
        T1 intensity above which a voxel belongs to the head.

    Returns
    -------
    numpy.ndarray
        uint8 ``[X, Y, Z]`` with values :data:`BACKGROUND` .. :data:`OTHER`.
    """
    labels = np.full(anatomy.t1.shape, BACKGROUND, dtype=np.uint8)
    head = anatomy.t1 > head_threshold
    brain = (anatomy.gm + anatomy.wm) >= 0.5
    labels[head] = OTHER
    labels[head & brain & (anatomy.gm >= anatomy.wm)] = GREY_MATTER
    labels[head & brain & (anatomy.wm > anatomy.gm)] = WHITE_MATTER
    return labels

"""Diffeomorphic registration helpers on dense displacement fields (DDFs), built on MONAI.

Conventions (MONAI's): a DDF ``u`` is a tensor ``[B, 3, X, Y, Z]`` in voxels, channel ``i``
displacing along spatial axis ``i``; warping an image with it samples the image at
``p + u(p)`` (:func:`warp`). A map ``phi(p) = p + u(p)`` is therefore a *pull-back*: the
warped image is ``image o phi``.

What MONAI provides is used from it: :class:`monai.networks.blocks.Warp` (resampling),
:class:`monai.networks.blocks.DVF2DDF` (scaling and squaring),
:class:`monai.losses.LocalNormalizedCrossCorrelationLoss` (the LNCC metric),
:class:`monai.losses.BendingEnergyLoss`, :func:`monai.networks.layers.separable_filtering` and
:class:`monai.networks.layers.GaussianFilter`. This module adds composition, Jacobian
determinants, folding, the SYM-Net regularisers and a thresholded local NCC map.

References
----------
Arsigny, Commowick, Pennec, Ayache (2006), "A Log-Euclidean framework for statistics on
diffeomorphisms", MICCAI: scaling and squaring of a stationary velocity field.
Mok, Chung (2020), "Fast symmetric diffeomorphic image registration with convolutional neural
networks", CVPR (SYM-Net): magnitude, negative-Jacobian and smoothness terms.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

#: Interpolation of images and fields (differentiable) and of label maps.
LINEAR, NEAREST = "bilinear", "nearest"


@lru_cache(maxsize=16)
def _warp_layer(mode: str, padding_mode: str, device: str):
    from monai.networks.blocks import Warp

    with warnings.catch_warnings():  # "using PyTorch native grid_sample" on CPU-only builds
        warnings.simplefilter("ignore")
        return Warp(mode=mode, padding_mode=padding_mode)


@lru_cache(maxsize=16)
def _dvf2ddf(steps: int, device: str):
    from monai.networks.blocks import DVF2DDF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DVF2DDF(num_steps=steps, mode=LINEAR, padding_mode="zeros")


def _check_field(ddf: torch.Tensor, name: str = "ddf") -> None:
    if ddf.ndim != 5 or ddf.shape[1] != 3:
        raise ValueError(f"{name} must be [B, 3, X, Y, Z] (a 3-D displacement field), got {tuple(ddf.shape)}")


def warp(image: torch.Tensor, ddf: torch.Tensor, mode: str = LINEAR, padding_mode: str = "zeros") -> torch.Tensor:
    """Resample ``image`` at ``p + ddf(p)`` (MONAI ``Warp``).

    Parameters
    ----------
    image
        ``[B, C, X, Y, Z]``.
    ddf
        ``[B, 3, X, Y, Z]`` in voxels.
    mode
        ``"bilinear"`` (trilinear in 3-D, differentiable) or ``"nearest"`` (labels).
    padding_mode
        Value outside the volume: ``"zeros"`` (skull-stripped images), ``"border"``.

    Returns
    -------
    torch.Tensor
        The warped image, same shape as ``image``.
    """
    _check_field(ddf)
    return _warp_layer(mode, padding_mode, str(ddf.device))(image, ddf)


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """DDF of ``phi_outer o phi_inner``: ``u(p) = u_inner(p) + u_outer(p + u_inner(p))``.

    Warping with the result equals warping with ``outer`` first and then with ``inner``:
    ``warp(warp(I, outer), inner) ~= warp(I, compose(outer, inner))``.
    """
    _check_field(outer, "outer")
    _check_field(inner, "inner")
    return inner + warp(outer, inner, padding_mode="zeros")


def integrate_velocity(velocity: torch.Tensor, steps: int, downsize: int = 1) -> torch.Tensor:
    """Displacement of the time-1 flow of a stationary velocity field (scaling and squaring).

    ``v / 2**steps`` is composed with itself ``steps`` times (MONAI ``DVF2DDF``; Arsigny et al.
    2006). With ``downsize > 1`` the field is integrated on a grid ``downsize`` times coarser and
    interpolated back (as VoxelMorph's ``int_downsize``), which is ``downsize**3`` times cheaper.

    Parameters
    ----------
    velocity
        ``[B, 3, X, Y, Z]`` in voxels.
    steps
        Number of squarings (7 in SYM-Net and GIRNet).
    downsize
        Integration grid factor (1 = full resolution).

    Returns
    -------
    torch.Tensor
        The DDF, same shape as ``velocity``; ``steps == 0`` returns the velocity itself.
    """
    _check_field(velocity, "velocity")
    if steps < 0 or downsize < 1:
        raise ValueError(f"steps must be >= 0 and downsize >= 1, got steps={steps}, downsize={downsize}")
    if steps == 0:
        return velocity
    shape = velocity.shape[2:]
    if downsize > 1:
        coarse = tuple(max(2, s // downsize) for s in shape)
        velocity = F.interpolate(velocity, size=coarse, mode="trilinear", align_corners=True)
        velocity = velocity * _scale(coarse, shape, velocity)
    ddf = _dvf2ddf(int(steps), str(velocity.device))(velocity)
    if downsize > 1:
        ddf = F.interpolate(ddf, size=tuple(shape), mode="trilinear", align_corners=True)
        ddf = ddf * _scale(tuple(shape), coarse, ddf)
    return ddf


def _scale(new: tuple[int, ...], old: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Per-channel factor converting voxel displacements between grids (align_corners=True)."""
    factors = [(n - 1) / max(o - 1, 1) for n, o in zip(new, old)]
    return torch.tensor(factors, dtype=like.dtype, device=like.device).view(1, 3, 1, 1, 1)


def jacobian_determinant(ddf: torch.Tensor) -> torch.Tensor:
    """det(D phi) of ``phi(p) = p + u(p)`` per voxel (central differences, one-sided at edges).

    Parameters
    ----------
    ddf
        ``[B, 3, X, Y, Z]`` in voxels.

    Returns
    -------
    torch.Tensor
        ``[B, X, Y, Z]``; 1 for the identity, <= 0 where the map folds.
    """
    _check_field(ddf)
    rows = []
    for i in range(3):  # row i: gradient of component i along the three axes
        grads = torch.gradient(ddf[:, i], dim=(1, 2, 3))
        rows.append(torch.stack(grads, dim=-1))
    jac = torch.stack(rows, dim=-2) + torch.eye(3, dtype=ddf.dtype, device=ddf.device)
    return torch.linalg.det(jac)


def negative_jacobian_penalty(ddf: torch.Tensor) -> torch.Tensor:
    """SYM-Net's folding penalty: mean of ``relu(-det(D phi))`` (Mok and Chung 2020, Eq. 6)."""
    return F.relu(-jacobian_determinant(ddf)).mean()


def folding_fraction(ddf: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Fraction of voxels (inside ``mask`` if given, ``[B, X, Y, Z]`` bool) where det(D phi) <= 0."""
    det = jacobian_determinant(ddf)
    folded = det <= 0
    if mask is not None:
        return float(folded[mask].float().mean()) if bool(mask.any()) else 0.0
    return float(folded.float().mean())


def gradient_smoothness(field: torch.Tensor) -> torch.Tensor:
    """Mean squared forward difference of a field along each axis, averaged over axes.

    The diffusion regulariser of SYM-Net (``smoothloss``) and VoxelMorph (``Grad('l2')``).
    """
    _check_field(field, "field")
    diffs = [torch.diff(field, dim=d) for d in (2, 3, 4)]
    return sum(torch.mean(d * d) for d in diffs) / 3.0


def bending_energy(field: torch.Tensor) -> torch.Tensor:
    """Second-order smoothness of a field (MONAI ``BendingEnergyLoss``, mean reduction)."""
    from monai.losses import BendingEnergyLoss

    with warnings.catch_warnings():  # MONAI 1.6 indexes with a list (a torch deprecation warning)
        warnings.simplefilter("ignore", UserWarning)
        return BendingEnergyLoss()(field)


def smoothness(field: torch.Tensor, kind: str = "gradient_l2") -> torch.Tensor:
    """``gradient_l2`` (SYM-Net, first order) or ``bending_energy`` (second order) of ``field``."""
    if kind == "gradient_l2":
        return gradient_smoothness(field)
    if kind == "bending_energy":
        return bending_energy(field)
    raise ValueError(f"unknown smoothness {kind!r}; use gradient_l2 or bending_energy")


def magnitude_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SYM-Net's magnitude term: ``| sum|a| - sum|b| | / numel(a)`` for the two half-way fields."""
    return torch.abs(a.abs().sum() - b.abs().sum()) / a.numel()


def _box_sum(x: torch.Tensor, window: int) -> torch.Tensor:
    from monai.networks.layers import separable_filtering

    kernel = torch.ones(window, dtype=x.dtype, device=x.device)
    return separable_filtering(x, [kernel] * (x.ndim - 2))


def lncc_map(a: torch.Tensor, b: torch.Tensor, window: int, threshold: float) -> torch.Tensor:
    """Squared local normalised cross-correlation per voxel, regularised by ``threshold``.

    ``cc = (cross**2 + t) / (var_a * var_b + t)`` with box sums over a ``window**3`` cube
    (zero padding), as in GIRNet's ``lncc``: where both images are flat (background), ``cc``
    tends to 1 (identical), not 0 as in MONAI's ``LocalNormalizedCrossCorrelationLoss``, which
    is why that class is not used for GIRNet's loss maps. With ``threshold = 0`` and
    non-flat windows the two agree (tested).

    Parameters
    ----------
    a, b
        ``[B, C, X, Y, Z]``.
    window
        Odd window edge in voxels.
    threshold
        ``t`` above (GIRNet: 0.1).

    Returns
    -------
    torch.Tensor
        ``[B, C, X, Y, Z]``, values in [0, 1] up to the regulariser.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the LNCC window must be a positive odd number of voxels, got {window}")
    n = float(window ** (a.ndim - 2))
    sa, sb = _box_sum(a, window), _box_sum(b, window)
    cross = _box_sum(a * b, window) - sa * sb / n
    var_a = _box_sum(a * a, window) - sa * sa / n
    var_b = _box_sum(b * b, window) - sb * sb / n
    return (cross * cross + threshold) / (var_a * var_b + threshold)


def monai_lncc_map(a: torch.Tensor, b: torch.Tensor, window: int) -> torch.Tensor:
    """Squared local NCC per voxel from MONAI's ``LocalNormalizedCrossCorrelationLoss`` (flat windows give 0).

    This is SYM-Net's original similarity (``cross^2 / (var_a var_b + 1e-5)``): unlike
    :func:`lncc_map`, a flat (e.g. emptied) window never scores as a match.
    """
    from monai.losses import LocalNormalizedCrossCorrelationLoss

    return -LocalNormalizedCrossCorrelationLoss(spatial_dims=a.ndim - 2, kernel_size=window, reduction="none")(a, b)


def lncc(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> float:
    """Mean squared local NCC of two images in [0, 1] (MONAI ``LocalNormalizedCrossCorrelationLoss``, negated)."""
    from monai.losses import LocalNormalizedCrossCorrelationLoss

    with torch.no_grad():
        return float(-LocalNormalizedCrossCorrelationLoss(spatial_dims=a.ndim - 2, kernel_size=window)(a, b))


def random_velocity(shape: tuple[int, int, int], sigma: float, max_velocity: float,
                    generator: torch.Generator) -> torch.Tensor:
    """A smooth random stationary velocity field ``[1, 3, *shape]`` (Gaussian-filtered noise).

    Parameters
    ----------
    shape
        Grid size.
    sigma
        Gaussian smoothing in voxels (the field's spatial scale).
    max_velocity
        Largest velocity magnitude in voxels after scaling.
    generator
        Seeded torch generator.
    """
    from monai.networks.layers import GaussianFilter

    noise = torch.randn((1, 3, *shape), generator=generator)
    smooth = GaussianFilter(spatial_dims=3, sigma=sigma)(noise)
    norm = smooth.norm(dim=1).max().clamp_min(1e-12)
    return smooth * (max_velocity / norm)


def dice(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Dice overlap ``2|A n B| / (|A| + |B|)`` of two binary volumes; 1.0 when both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)

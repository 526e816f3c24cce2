"""GIRNet: registration, segmentation and inpainting co-learned (Liu and Gu, MICCAI 2023).

Liu, Gu. "Co-Learning Semantic-aware Unsupervised Segmentation for Pathological Image
Registration". MICCAI 2023, LNCS pp. 537-547, arXiv:2310.11040. Followed: the readable
implementation ly1998117/GIRNet (commit b93a968, ``train_GIRNet_Pseudo.py`` with the run mark
``noexclude221_MNI152_ntuc_histomatch_sym_y2xrec_win15``), read only; nothing is copied. Every
switch of that run mark is an explicit setting here (see ``config/papers/girnet.yaml``).

Modules (card section 2.1):

- :class:`RegNet`, SYM-Net style (Mok and Chung 2020): one U-Net predicts two stationary
  velocity fields ``v_xy`` and ``v_yx``; scaling and squaring gives the half-way maps and their
  inverses, composed into the full maps ``x -> y`` and ``y -> x``;
- :class:`SegNet` (MaskG): a 3-D U-Net with a sigmoid, ``m = SegNet(x)``;
- :class:`InpNet` (Inpainter2): two encoders, one for ``[x (.) (1 - m), m]`` and one for the
  atlas warped into the moving space ``y2x``, and one decoder over both encoders' features.

Losses (card section 2.3): :func:`segmentation_loss` (minimal mutual information between the
lesion and its context), :func:`inpainting_loss` (NCC + MSE towards ``x`` outside and the
histogram-matched ``y2x`` inside the mask) and :func:`registration_loss` (SYM-Net's symmetric
loss, computed on the inpainted image when the registration is guided by inpainting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.medical.registration import (
    compose,
    integrate_velocity,
    lncc_map,
    magnitude_difference,
    monai_lncc_map,
    negative_jacobian_penalty,
    smoothness,
    warp,
)

MODULES: tuple[str, ...] = ("reg", "gen", "inp")
"""The three modules, named as in the official code: registration, mask generation, inpainting."""


# --------------------------------------------------------------------------- networks


def _unet(in_channels: int, out_channels: int, channels: Sequence[int], res_units: int) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, channels=tuple(channels),
                strides=(2,) * (len(channels) - 1), num_res_units=res_units, act=("leakyrelu", {"negative_slope": 0.2}),
                norm=("instance", {"affine": True}))


class RegNet(nn.Module):
    """SYM-Net-style diffeomorphic registration network.

    Parameters
    ----------
    channels
        Feature channels of the MONAI U-Net per level (its depth is ``len(channels) - 1``).
    res_units
        Residual units per level of the U-Net.
    range_flow
        Scale of the velocities in voxels: ``v = range_flow * softsign(features)`` (100 in SYM-Net).
    steps
        Scaling-and-squaring steps (7).
    symmetric
        SYM-Net's symmetric formulation (half-way maps composed with inverses); ``False``
        integrates ``v_xy`` and ``v_yx`` directly into the full maps (the run mark ``nonsym``).
    integration_downsize
        Integrate on a grid this many times coarser (1 = full resolution, as in SYM-Net).
    """

    def __init__(self, channels: Sequence[int], res_units: int = 1, range_flow: float = 100.0, steps: int = 7,
                 symmetric: bool = True, integration_downsize: int = 1) -> None:
        super().__init__()
        self.unet = _unet(2, channels[0], channels, res_units)
        # two velocity heads (SYM-Net's dc9 / dc10), starting near the identity (VoxelMorph's flow init)
        self.head = nn.Conv3d(channels[0], 6, kernel_size=3, padding=1)
        with torch.no_grad():
            self.head.weight.normal_(0.0, 1e-5)
            self.head.bias.zero_()
        self.range_flow = float(range_flow)
        self.steps = int(steps)
        self.symmetric = bool(symmetric)
        self.integration_downsize = int(integration_downsize)

    def velocities(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``v_xy, v_yx`` in voxels, each ``[B, 3, X, Y, Z]``."""
        v = self.range_flow * F.softsign(self.head(F.leaky_relu(self.unet(torch.cat([x, y], dim=1)), 0.2)))
        return v[:, :3], v[:, 3:]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Fields:
        """All displacement fields of the pair ``(x, y)``."""
        v_xy, v_yx = self.velocities(x, y)
        n = v_xy.shape[0]
        if self.symmetric:
            stacked = integrate_velocity(torch.cat([v_xy, v_yx, -v_xy, -v_yx]), self.steps, self.integration_downsize)
            half_xy, half_yx, inv_xy, inv_yx = stacked.split(n)
            # x o phi_xy^(1/2) o (phi_yx^(1/2))^-1 lands on y (SYM-Net, Eq. 3)
            return Fields(v_xy, v_yx, half_xy, half_yx, compose(half_xy, inv_yx), compose(half_yx, inv_xy))
        full = integrate_velocity(torch.cat([v_xy, v_yx]), self.steps, self.integration_downsize)
        xy, yx = full.split(n)
        return Fields(v_xy, v_yx, None, None, xy, yx)


@dataclass
class Fields:
    """Velocities and displacement fields (voxels) of one registration.

    ``warp(x, xy)`` is ``x`` in atlas space, ``warp(y, yx)`` the atlas in moving space
    (``y2x``); ``half_xy`` / ``half_yx`` take ``x`` / ``y`` half-way (``None`` when not symmetric).
    """

    v_xy: torch.Tensor
    v_yx: torch.Tensor
    half_xy: torch.Tensor | None
    half_yx: torch.Tensor | None
    xy: torch.Tensor
    yx: torch.Tensor


class SegNet(nn.Module):
    """MaskG: a MONAI 3-D U-Net with a sigmoid output, ``m = sigmoid(U(x) + output_bias)`` in [0, 1].

    ``output_bias`` (0 in the official MaskG) sets where the mask starts: -2 starts it nearly
    empty (m ~ 0.12) instead of at m ~ 0.5 everywhere (a project option for short training).
    """

    def __init__(self, channels: Sequence[int], res_units: int = 1, output_bias: float = 0.0) -> None:
        super().__init__()
        self.unet = _unet(1, 1, channels, res_units)
        self.output_bias = float(output_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.unet(x) + self.output_bias)


def _block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    from monai.networks.blocks import Convolution

    return Convolution(3, in_channels, out_channels, strides=stride, kernel_size=3,
                       act=("leakyrelu", {"negative_slope": 0.2}), norm=None)


class _Encoder(nn.Module):
    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        ins = [in_channels, *channels[:-1]]
        self.levels = nn.ModuleList(_block(i, o, 1 if k == 0 else 2) for k, (i, o) in enumerate(zip(ins, channels)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class InpNet(nn.Module):
    """Inpainter2: a two-encoder U-Net (MONAI convolution blocks).

    One encoder reads ``[known image, mask]``, the other the atlas warped into the moving
    space; the decoder upsamples the concatenated deepest features and, at every level,
    concatenates both encoders' skip features. The output is the inpainted volume (no
    activation, as in the official Inpainter2).

    Parameters
    ----------
    channels
        Features per level (level 0 at full resolution, each further level halves the grid).
    residual
        Predict a correction added to ``y2x`` instead of the volume itself (a project option
        for short training; the official Inpainter2 predicts the volume).
    """

    def __init__(self, channels: Sequence[int], residual: bool = False) -> None:
        super().__init__()
        self.residual = bool(residual)
        self.image_encoder = _Encoder(2, channels)
        self.atlas_encoder = _Encoder(1, channels)
        decoder_in = [2 * channels[-1]]
        decoder = []
        for level in range(len(channels) - 2, -1, -1):
            decoder.append(_block(decoder_in[-1] + 2 * channels[level], channels[level], 1))
            decoder_in.append(channels[level])
        self.decoder = nn.ModuleList(decoder)
        self.head = nn.Conv3d(channels[0], 1, kernel_size=3, padding=1)
        if self.residual:  # start as the atlas in moving space (the correction is ~0)
            with torch.no_grad():
                self.head.weight.normal_(0.0, 1e-5)
                self.head.bias.zero_()

    def forward(self, known: torch.Tensor, mask: torch.Tensor, y2x: torch.Tensor) -> torch.Tensor:
        image_features = self.image_encoder(torch.cat([known, mask], dim=1))
        atlas_features = self.atlas_encoder(y2x)
        h = torch.cat([image_features[-1], atlas_features[-1]], dim=1)
        for block, level in zip(self.decoder, range(len(image_features) - 2, -1, -1)):
            skip_i, skip_a = image_features[level], atlas_features[level]
            h = F.interpolate(h, size=skip_i.shape[2:], mode="trilinear", align_corners=False)
            h = block(torch.cat([h, skip_i, skip_a], dim=1))
        out = self.head(h)
        return y2x + out if self.residual else out


class GIRNet(nn.Module):
    """The three modules together (registration ``reg``, segmentation ``gen``, inpainting ``inp``).

    Parameters
    ----------
    networks
        ``{reg: {channels, res_units}, seg: {channels, res_units}, inp: {channels, residual}}``.
    registration
        ``range_flow``, ``steps``, ``symmetric``, ``integration_downsize``.
    """

    def __init__(self, networks: Mapping[str, Any], registration: Mapping[str, Any]) -> None:
        super().__init__()
        self.reg = RegNet(networks["reg"]["channels"], networks["reg"].get("res_units", 1),
                          range_flow=registration["range_flow"], steps=registration["steps"],
                          symmetric=registration["symmetric"],
                          integration_downsize=registration.get("integration_downsize", 1))
        self.gen = SegNet(networks["seg"]["channels"], networks["seg"].get("res_units", 1),
                          output_bias=networks["seg"].get("output_bias", 0.0))
        self.inp = InpNet(networks["inp"]["channels"], residual=networks["inp"].get("residual", False))

    def module(self, name: str) -> nn.Module:
        """``reg``, ``gen`` or ``inp``."""
        if name not in MODULES:
            raise ValueError(f"unknown module {name!r}; one of {MODULES}")
        return getattr(self, name)


# --------------------------------------------------------------------------- losses


def segmentation_eps(n_voxels: int, divisor: float = 32.0) -> float:
    """GIRNet's ``eps`` of the segmentation loss: ``|Omega| / divisor`` (138,240 for 160 x 192 x 144).

    The official code fixes it from the 1 mm volume size; rescaling with the volume keeps its
    ratio to the mask sizes (card, pitfall "eps is tied to the volume size").
    """
    if n_voxels <= 0 or divisor <= 0:
        raise ValueError(f"need a positive volume size and divisor, got {n_voxels}, {divisor}")
    return float(n_voxels) / float(divisor)


def segmentation_loss(x: torch.Tensor, m: torch.Tensor, x_f_hat: torch.Tensor, x_b_hat: torch.Tensor,
                      window: int, threshold: float, eps: float) -> torch.Tensor:
    """Minimal-mutual-information segmentation loss (``GenLoss.neg_coeff_constraint_loss``).

    With ``D(u, v) = 1 - LNCC_map(u, v)``::

        L_gen = - sum(m D(x, x_f_hat)) / (sum(m) + eps) + sum((1 - m) D(x, x_b_hat)) / (sum(1 - m) + eps)

    The lesion (inside ``m``) should not be predictable from its context (``x_f_hat`` inpaints
    it from the rest), the rest should be predictable from the lesion and the atlas.

    Parameters
    ----------
    x
        Moving image ``[B, 1, X, Y, Z]``.
    m
        Soft mask in [0, 1], same shape; the only input with gradients.
    x_f_hat, x_b_hat
        ``x`` with the mask region, respectively the rest, inpainted.
    window, threshold
        Of :func:`reprolab.medical.registration.lncc_map` (15 voxels and 0.1 at 1 mm).
    eps
        :func:`segmentation_eps`.
    """
    dims = tuple(range(1, x.ndim))
    d_f = 1.0 - lncc_map(x, x_f_hat, window, threshold)
    d_b = 1.0 - lncc_map(x, x_b_hat, window, threshold)
    fore = (m * d_f).sum(dims) / (m.sum(dims) + eps)
    back = ((1 - m) * d_b).sum(dims) / ((1 - m).sum(dims) + eps)
    return (back - fore).mean()


def histogram_match(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Map ``source``'s intensities onto ``reference``'s histogram (quantile matching per sample).

    Every voxel of ``source`` takes the value of ``reference`` at the same quantile (rank),
    linearly interpolated between ``reference``'s sorted values; the official code does the
    same with 256-bin cumulative histograms (``HistogramMatching``). Not differentiable.
    """
    out = torch.empty_like(source)
    for b in range(source.shape[0]):
        src, ref = source[b].reshape(-1), reference[b].reshape(-1).sort().values
        order = src.argsort()
        positions = torch.linspace(0, ref.numel() - 1, src.numel(), dtype=torch.float64, device=src.device)
        lo = positions.floor().long()
        hi = (lo + 1).clamp_max(ref.numel() - 1)
        frac = (positions - lo).to(ref.dtype)
        matched = ref[lo] * (1 - frac) + ref[hi] * frac
        flat = torch.empty_like(src)
        flat[order] = matched
        out[b] = flat.view_as(source[b])
    return out


def inpainting_loss(x: torch.Tensor, mask: torch.Tensor, y2x: torch.Tensor, rec: torch.Tensor, window: int,
                    threshold: float, w_ncc: float, w_mse: float, mse_region: str = "whole") -> torch.Tensor:
    """One term of ``InpLoss2``: ``-w_ncc NCC(x, rec) + w_mse MSE(target, rec)``.

    ``target = x (.) (1 - mask) + y2x (.) mask``: the inpainted region should look like the
    (histogram-matched) atlas in moving space, the rest like ``x``.

    Parameters
    ----------
    mask
        Binary mask of the inpainted region.
    y2x
        Atlas in moving space, already histogram-matched to ``x`` when that is configured.
    mse_region
        ``whole``: MSE over the whole volume (the run mark's ``noexclude``); ``exclude``: mean
        squared error inside the mask plus that outside it, each normalised by its own size.
    """
    ncc = lncc_map(x, rec, window, threshold).mean()
    if mse_region == "whole":
        mse = F.mse_loss(rec, x * (1 - mask) + y2x * mask)
    elif mse_region == "exclude":
        inside = (mask * (y2x - rec) ** 2).sum() / (mask.sum() + 1e-5)
        outside = ((1 - mask) * (x - rec) ** 2).sum() / ((1 - mask).sum() + 1e-5)
        mse = inside + outside
    else:
        raise ValueError(f"mse_region must be whole or exclude, got {mse_region!r}")
    return -w_ncc * ncc + w_mse * mse


def _masked_similarity(a: torch.Tensor, b: torch.Tensor, window: int, threshold: float | None,
                       keep: torch.Tensor | None) -> torch.Tensor:
    cc = monai_lncc_map(a, b, window) if threshold is None else lncc_map(a, b, window, threshold)
    return (cc if keep is None else cc * keep).mean()


def registration_loss(fields: Fields, x_sim: torch.Tensor, x_y2x_target: torch.Tensor, y: torch.Tensor,
                      settings: Mapping[str, Any], keep_moving: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """SYM-Net's symmetric registration loss (``SymRegLoss``), as GIRNet trains it.

    ``-NCC(X_half, Y_half) + w_mag |X_half| vs |Y_half| - NCC(Y, X->Y) - NCC(X', Y->X)
    + w_jac (negative Jacobians of both full maps) + w_smooth (smoothness of both velocities)``,
    where ``X`` (warped to the middle and to ``y``) is ``x_sim`` (the inpainted image when the
    registration is guided by inpainting) and ``X'`` is ``x_y2x_target`` (the run mark's
    ``y2xrec``: the inpainted image; otherwise the original).

    Parameters
    ----------
    fields
        From :class:`RegNet` (with gradients).
    settings
        ``window``, ``similarity`` (``thresholded``: GIRNet's ``lncc`` with ``ncc_threshold``,
        where flat windows score 1; ``monai``: MONAI's LNCC, SYM-Net's original, where they
        score 0), ``smoothness`` (kind) and ``weights`` (``magnitude``, ``jacobian``,
        ``smoothness``).
    keep_moving
        Cost-function masking (Brett et al. 2001): 1 where the similarity counts, 0 in the
        lesion, in moving space; it is warped with the current (detached) fields into the
        atlas and half-way spaces where those similarities are computed.

    Returns
    -------
    dict
        ``total`` and each term.
    """
    win = int(settings["window"])
    thr = float(settings["ncc_threshold"]) if settings.get("similarity", "thresholded") == "thresholded" else None
    weights = settings["weights"]
    keep_atlas = keep_half = None
    if keep_moving is not None:
        keep_atlas = warp(keep_moving, fields.xy.detach())
        if fields.half_xy is not None:
            keep_half = warp(keep_moving, fields.half_xy.detach())
    x_to_y = warp(x_sim, fields.xy)
    y_to_x = warp(y, fields.yx)
    terms = {
        "ncc_full": -_masked_similarity(y, x_to_y, win, thr, keep_atlas)
        - _masked_similarity(x_y2x_target, y_to_x, win, thr, keep_moving),
        "jacobian": negative_jacobian_penalty(fields.xy) + negative_jacobian_penalty(fields.yx),
        "smoothness": smoothness(fields.v_xy, settings["smoothness"]) + smoothness(fields.v_yx, settings["smoothness"]),
    }
    total = terms["ncc_full"] + weights["jacobian"] * terms["jacobian"] + weights["smoothness"] * terms["smoothness"]
    if fields.half_xy is not None and fields.half_yx is not None:
        terms["ncc_half"] = -_masked_similarity(warp(x_sim, fields.half_xy), warp(y, fields.half_yx), win, thr,
                                                keep_half)
        terms["magnitude"] = magnitude_difference(fields.half_xy, fields.half_yx)
        total = total + terms["ncc_half"] + weights["magnitude"] * terms["magnitude"]
    terms["total"] = total
    return terms


def inpaint(inp: nn.Module, x: torch.Tensor, region: torch.Tensor, y2x: torch.Tensor,
            keep_known: bool) -> torch.Tensor:
    """Inpaint ``region`` (binary) of ``x`` from the rest and ``y2x``.

    With ``keep_known`` (the run mark's ``ntuc``, normal tissue unchanged) the known voxels are
    copied from ``x``: ``x (.) (1 - region) + Inp(.) (.) region``.
    """
    known = x * (1 - region)
    out = inp(known, region, y2x)
    return known + out * region if keep_known else out

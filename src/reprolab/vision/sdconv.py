"""SD-Conv: sparse dynamic convolution (He, Jiang, Dong, Ding, WACV 2023, arXiv:2204.02227).

No official code exists; this is the reconstruction of the project card
(``../shared/papers/sdconv.md``), built from the two published blocks SD-Conv combines:

- **Dynamic convolution** (DY-Conv; Chen et al., CVPR 2020): ``K`` static kernels ``W_k``
  aggregated per sample, ``y = (sum_k pi_k(x) W_k) * x + sum_k pi_k(x) b_k``, with
  ``pi(x) = softmax(FC2(ReLU(FC1(GAP(x)))) / tau)`` and ``tau`` annealed during training.
- **Learnable-threshold masks** (Dynamic Sparse Training, DST; Liu et al., ICLR 2020): a
  weight tensor ``W`` with one threshold ``t_c`` per output filter is used as
  ``W (.) S(|W| - t)``, ``S`` the unit step; its backward is the long-tailed estimator
  ``g``; the penalty ``alpha * sum_c exp(-t_c)`` raises the thresholds (and the sparsity);
  a layer that keeps at most 1 % of its weights has its thresholds reset to zero.
- **SD-Conv** = DY-Conv whose ``K`` kernels are masked: ``y = (sum_k pi_k (W_k (.) M_k)) * x``,
  ``M_k = S(|W_k| - t_k)`` with one threshold vector per kernel (project choice, card 2.3).

Every layer is a drop-in replacement of :class:`torch.nn.Conv2d` (same constructor
arguments first; :func:`make_conv` builds any kind by name).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.distributed import is_main, launch_training, unwrap
from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import atomic_path, write_json
from reprolab.core.runtime import choose_device, seed_everything, set_threads
from reprolab.data.imagenet import FolderBatches, imagenet_batches, prepare_imagenet  # noqa: F401 (re-exported)
from reprolab.snn.data import ArrayBatches, Augment, Preprocess
from reprolab.snn.training import StepFn, TrainSpec, evaluate, fit
from reprolab.vision import CONV_KINDS, parse_run

log = logging.getLogger("reprolab.vision")



# ---------------------------------------------------------------------------------------
# Learnable-threshold mask (DST)
# ---------------------------------------------------------------------------------------

def long_tailed_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative estimate of the unit step used in backward (DST, Liu et al. 2020, Eq. 6).

    ``g(x) = 2 - 4|x|`` for ``|x| <= 0.4``, ``0.4`` for ``0.4 < |x| <= 1``, ``0`` beyond.
    """
    a = x.abs()
    return torch.where(a <= 0.4, 2.0 - 4.0 * a, torch.where(a <= 1.0, torch.full_like(a, 0.4), torch.zeros_like(a)))


class LongTailedStep(torch.autograd.Function):
    """``S(x) = 1[x > 0]`` forward, :func:`long_tailed_grad` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * long_tailed_grad(x)


def binary_step(x: torch.Tensor) -> torch.Tensor:
    """Unit step with the long-tailed straight-through gradient."""
    return LongTailedStep.apply(x)


@dataclass(frozen=True)
class MaskSpec:
    """Settings of the learnable-threshold mask (``papers.sdconv.mask``).

    Attributes
    ----------
    threshold_per
        ``kernel``: SD-Conv keeps one threshold vector per kernel ``k`` (``[K, C_out]``);
        ``layer``: the ``K`` kernels share one vector (``[C_out]``). Static masked layers
        always have one threshold per output filter.
    reset_keep_ratio
        Safety reset of DST: a layer keeping at most this fraction of its weights gets its
        thresholds set back to 0 (0 disables the reset).
    init
        Initial threshold (0 in DST).
    """

    threshold_per: str = "kernel"
    reset_keep_ratio: float = 0.01
    init: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict | None) -> MaskSpec:
        """Build from a ``mask`` config section (absent keys keep their defaults)."""
        cfg = dict(cfg or {})
        spec = cls(**cfg)
        if spec.threshold_per not in ("kernel", "layer"):
            raise ConfigError(f"papers.sdconv.mask.threshold_per is {spec.threshold_per!r}; use kernel or layer")
        return spec


class ThresholdMask(nn.Module):
    """``W -> W (.) S(|W| - t)`` with a learnable threshold per output filter (DST, Eq. 4-5).

    Parameters
    ----------
    threshold_shape
        Leading dimensions of the weight that own a threshold, e.g. ``(C_out,)`` for a
        convolution weight ``[C_out, C_in, k, k]``, ``(K, C_out)`` or ``(1, C_out)`` for the
        ``[K, C_out, C_in, k, k]`` kernels of a dynamic convolution.
    spec
        Reset ratio and initial value.

    Notes
    -----
    The gradient reaches ``W`` twice, directly and through ``|W|`` inside the step
    (times ``sign(W)``), and reaches ``t`` with a minus sign, as in DST (a plain identity
    straight-through estimator would change the method; card, pitfalls). The safety reset
    is applied in training mode only, so evaluation never changes parameters; every reset is
    counted in the ``resets`` buffer and logged.
    """

    def __init__(self, threshold_shape: tuple[int, ...], spec: MaskSpec = MaskSpec()) -> None:
        super().__init__()
        self.reset_keep_ratio = float(spec.reset_keep_ratio)
        self.threshold = nn.Parameter(torch.full(threshold_shape, float(spec.init)))
        self.register_buffer("resets", torch.zeros((), dtype=torch.long))

    def _mask(self, weight: torch.Tensor) -> torch.Tensor:
        t = self.threshold.reshape(*self.threshold.shape, *([1] * (weight.dim() - self.threshold.dim())))
        return binary_step(weight.abs() - t)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """The masked weight ``W (.) M``."""
        mask = self._mask(weight)
        if self.training and self.reset_keep_ratio > 0 and float(mask.detach().mean()) <= self.reset_keep_ratio:
            kept = float(mask.detach().mean())
            with torch.no_grad():
                self.threshold.zero_()
                self.resets += 1
            log.warning("safety reset: a layer kept %.4f of its weights; thresholds set to 0 (reset %d)",
                        kept, int(self.resets))
            mask = self._mask(weight)
        return weight * mask

    @torch.no_grad()
    def hard_mask(self, weight: torch.Tensor) -> torch.Tensor:
        """The binary mask as a boolean tensor (no reset, no gradient)."""
        t = self.threshold.reshape(*self.threshold.shape, *([1] * (weight.dim() - self.threshold.dim())))
        return (weight.abs() - t) > 0


# ---------------------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------------------

class MaskedConv2d(nn.Conv2d):
    """Static convolution whose kernel is pruned by a learnable-threshold mask (DST).

    Constructor as :class:`torch.nn.Conv2d`, plus ``mask``: :class:`MaskSpec`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True, mask: MaskSpec = MaskSpec()) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias)
        self.mask = ThresholdMask((out_channels,), mask)

    def effective_weight(self) -> torch.Tensor:
        """The kernel as used in the forward pass (masked)."""
        return self.mask(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


def attention_hidden(in_channels: int, ratio: float, K: int) -> int:
    """Hidden width of DY-Conv's attention: ``int(C_in * ratio) + 1``, or ``K`` for RGB input (card 2.1)."""
    return K if in_channels == 3 else int(in_channels * ratio) + 1


class KernelAttention(nn.Module):
    """``pi(x) = softmax(FC2(ReLU(FC1(GAP(x)))) / tau)`` over the ``K`` kernels (DY-Conv, Eq. 3).

    The two FC layers have no bias and a Kaiming-normal (fan-out) initialisation, as in the
    reference implementation the card cites.
    """

    def __init__(self, in_channels: int, K: int, ratio: float = 0.25) -> None:
        super().__init__()
        hidden = attention_hidden(in_channels, ratio, K)
        self.fc1 = nn.Linear(in_channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, K, bias=False)
        for fc in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(fc.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
        """``[N, C, H, W] -> [N, K]`` attention weights (each row sums to 1)."""
        logits = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))
        return torch.softmax(logits / temperature, dim=1)


class DynamicConv2d(nn.Module):
    """Dynamic convolution (DY-Conv), optionally with masked kernels (SD-Conv).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As :class:`torch.nn.Conv2d`.
    K
        Number of static kernels aggregated per sample (4 in DY-Conv and the card).
    ratio
        Attention hidden width ratio (0.25).
    mask
        ``None`` for DY-Conv; a :class:`MaskSpec` for SD-Conv (masked kernels).

    Notes
    -----
    The per-sample kernels are aggregated with one matrix product ``pi [N, K] @ W [K, -1]``
    and applied with one grouped convolution (``groups = N * groups`` on the input reshaped
    to ``[1, N * C_in, H, W]``), as in DY-Conv's reference code. The aggregated kernel tensor
    is ``N`` times a static kernel: use small batches on CPU. The temperature ``tau`` is a
    buffer set by :func:`set_temperature` (saved with the model).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True, K: int = 4, ratio: float = 0.25,
                 mask: MaskSpec | None = None) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels}->{out_channels} are not divisible by groups={groups}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, int(kernel_size)
        self.stride, self.padding, self.dilation, self.groups, self.K = stride, padding, dilation, groups, K
        self.weight = nn.Parameter(torch.empty(K, out_channels, in_channels // groups, self.kernel_size,
                                               self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(K, out_channels)) if bias else None
        for k in range(K):
            nn.init.kaiming_uniform_(self.weight[k])  # each kernel initialised on its own, as DY-Conv's code
        self.attention = KernelAttention(in_channels, K, ratio)
        self.register_buffer("temperature", torch.tensor(1.0))
        if mask is not None:
            shape = (K, out_channels) if mask.threshold_per == "kernel" else (1, out_channels)
            self.mask = ThresholdMask(shape, mask)
        else:
            self.mask = None

    @property
    def sparse(self) -> bool:
        """True for SD-Conv (masked kernels)."""
        return self.mask is not None

    def effective_weight(self) -> torch.Tensor:
        """The ``K`` kernels as used in the forward pass (masked for SD-Conv)."""
        return self.mask(self.weight) if self.mask is not None else self.weight

    def aggregate(self, pi: torch.Tensor, kernels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-sample kernels ``sum_k pi_k W_k`` as ``[N * C_out, C_in / g, k, k]`` and biases ``[N * C_out]``."""
        n = pi.shape[0]
        weight = (pi @ kernels.reshape(self.K, -1)).reshape(n * self.out_channels, *kernels.shape[2:])
        bias = (pi @ self.bias).reshape(-1) if self.bias is not None else None
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pi = self.attention(x, self.temperature)
        weight, bias = self.aggregate(pi, self.effective_weight())
        out = F.conv2d(x.reshape(1, n * c, h, w), weight, bias, self.stride, self.padding, self.dilation,
                       self.groups * n)
        return out.reshape(n, self.out_channels, out.shape[-2], out.shape[-1])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, K={self.K}, sparse={self.sparse}")


@dataclass(frozen=True)
class ConvSpec:
    """What a backbone needs to build its replaceable convolutions.

    Attributes
    ----------
    kind
        ``static`` (``nn.Conv2d``), ``masked`` (DST), ``dynamic`` (DY-Conv) or ``sdconv``.
    K, ratio
        Dynamic kinds: kernels and attention ratio.
    mask
        Masked kinds: :class:`MaskSpec`.
    """

    kind: str = "static"
    K: int = 4
    ratio: float = 0.25
    mask: MaskSpec = MaskSpec()

    def __post_init__(self) -> None:
        if self.kind not in CONV_KINDS:
            raise ConfigError(f"convolution kind {self.kind!r} is unknown; use one of {', '.join(CONV_KINDS)}")


def make_conv(spec: ConvSpec, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0, groups: int = 1, bias: bool = False) -> nn.Module:
    """A convolution of kind ``spec.kind`` with :class:`torch.nn.Conv2d`'s arguments."""
    args = (in_channels, out_channels, kernel_size)
    kw = {"stride": stride, "padding": padding, "groups": groups, "bias": bias}
    if spec.kind == "static":
        return nn.Conv2d(*args, **kw)
    if spec.kind == "masked":
        return MaskedConv2d(*args, **kw, mask=spec.mask)
    if spec.kind == "dynamic":
        return DynamicConv2d(*args, **kw, K=spec.K, ratio=spec.ratio)
    return DynamicConv2d(*args, **kw, K=spec.K, ratio=spec.ratio, mask=spec.mask)


# ---------------------------------------------------------------------------------------
# Model-level helpers: penalty, temperature, counts
# ---------------------------------------------------------------------------------------

def threshold_masks(model: nn.Module) -> Iterator[ThresholdMask]:
    """Every learnable-threshold mask in ``model``."""
    return (m for m in model.modules() if isinstance(m, ThresholdMask))


def sparsity_penalty(model: nn.Module) -> torch.Tensor:
    """``sum_layers sum_c exp(-t_c)`` (DST's sparse regulariser; multiply by alpha)."""
    terms = [torch.exp(-m.threshold).sum() for m in threshold_masks(model)]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def set_temperature(model: nn.Module, tau: float) -> None:
    """Set the softmax temperature of every dynamic convolution in ``model``."""
    for m in model.modules():
        if isinstance(m, DynamicConv2d):
            m.temperature.fill_(float(tau))


def temperature_at(epoch: int, start: float, end: float, anneal_epochs: int) -> float:
    """Linear temperature schedule: ``start`` at epoch 0 to ``end`` at ``anneal_epochs``, then ``end``.

    DY-Conv anneals ``tau`` from 30 to 1 over the first epochs; the card fixes a linear
    per-epoch schedule as the project's choice (the reference code starts at 34 and
    subtracts 3 per epoch).
    """
    if anneal_epochs <= 0:
        return float(end)
    frac = min(max(epoch, 0) / anneal_epochs, 1.0)
    return float(start + (end - start) * frac)


def replaceable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Masked and dynamic convolutions of ``model`` by qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (MaskedConv2d, DynamicConv2d))}


@torch.no_grad()
def effective_weight(module: nn.Module) -> torch.Tensor:
    """Kernel(s) of a convolution as the inference model uses them (hard mask, no reset)."""
    if isinstance(module, MaskedConv2d):
        return module.weight * module.mask.hard_mask(module.weight)
    if isinstance(module, DynamicConv2d) and module.mask is not None:
        return module.weight * module.mask.hard_mask(module.weight)
    return module.weight.detach()


def masked_kernel_density(model: nn.Module) -> float:
    """Fraction of the masked kernels' weights that are kept (1.0 when nothing is masked)."""
    kept, total = 0, 0
    for m in replaceable_layers(model).values():
        if isinstance(m, MaskedConv2d) or m.mask is not None:
            w = effective_weight(m)
            kept += int((w != 0).sum())
            total += w.numel()
    return kept / total if total else 1.0


def total_resets(model: nn.Module) -> int:
    """Safety resets of every mask so far."""
    return int(sum(int(m.resets) for m in threshold_masks(model)))


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Dense and non-zero parameters of the inference model (thresholds are not counted).

    Masked kernels count their kept weights only (a weight that is exactly zero without a
    mask is still stored, so every other tensor counts whole). Returns ``dense``,
    ``nonzero``, ``kernel_dense`` and ``kernel_nonzero`` (the replaceable convolutions'
    kernels alone).
    """
    kernels = {f"{name}.weight": m for name, m in replaceable_layers(model).items()}
    dense = nonzero = k_dense = k_nonzero = 0
    for name, p in model.named_parameters():
        if name.endswith("threshold"):
            continue
        if name in kernels:
            nnz = int((effective_weight(kernels[name]) != 0).sum())
            k_dense += p.numel()
            k_nonzero += nnz
        else:
            nnz = p.numel()  # only masks remove weights; other tensors are stored whole
        dense += p.numel()
        nonzero += nnz
    return {"dense": dense, "nonzero": nonzero, "kernel_dense": k_dense, "kernel_nonzero": k_nonzero}


def layer_sparsity(model: nn.Module) -> list[dict[str, float | int | str]]:
    """Per replaceable layer: kind, dense and kept kernel weights, sparsity, safety resets."""
    rows = []
    for name, m in replaceable_layers(model).items():
        w = effective_weight(m)
        nnz = int((w != 0).sum())
        kind = "masked" if isinstance(m, MaskedConv2d) else ("sdconv" if m.mask is not None else "dynamic")
        resets = int(m.mask.resets) if getattr(m, "mask", None) is not None else 0
        rows.append({"layer": name, "kind": kind, "dense": w.numel(), "nonzero": nnz,
                     "sparsity": 1.0 - nnz / w.numel(), "resets": resets})
    return rows


def attention_entropy(pi: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row of an attention matrix ``[N, K]``; ``log K`` is uniform."""
    return -(pi * torch.log(pi.clamp_min(1e-12))).sum(dim=1)



# ---------------------------------------------------------------------------------------
# Stored sparsity: export of the masked kernels and inference from the sparse form
# ---------------------------------------------------------------------------------------

def _is_masked(layer: nn.Module) -> bool:
    return isinstance(layer, MaskedConv2d) or (isinstance(layer, DynamicConv2d) and layer.mask is not None)


def _csr_of(weight: torch.Tensor, rows: int) -> dict[str, torch.Tensor | list[int]]:
    """CSR arrays of ``weight`` viewed as ``[rows, -1]`` (int32 indices)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Sparse CSR tensor support is in beta.*")
        csr = weight.detach().reshape(rows, -1).to_sparse_csr()
    return {"crow": csr.crow_indices().to(torch.int32), "col": csr.col_indices().to(torch.int32),
            "values": csr.values().clone(), "shape": list(weight.shape)}


def export_sparse(model: nn.Module) -> dict[str, dict]:
    """The inference model with its masked kernels stored as CSR matrices.

    Static masked kernels are stored as ``[C_out, C_in/g * k * k]`` matrices, SD-Conv
    kernels as ``[K * C_out, C_in/g * k * k]``; only their kept weights and indices are
    stored. Thresholds (training-only) are dropped; every other tensor stays dense.

    Returns
    -------
    dict
        ``dense`` (state dict without the masked kernels and thresholds) and ``sparse``
        (``{layer name: {crow, col, values, shape}}``).
    """
    layers = {n: m for n, m in replaceable_layers(model).items() if _is_masked(m)}
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("threshold")}
    sparse = {}
    for name, layer in layers.items():
        w = effective_weight(layer)
        rows = w.shape[0] if isinstance(layer, MaskedConv2d) else w.shape[0] * w.shape[1]
        sparse[name] = _csr_of(w, rows)
        del state[f"{name}.weight"]
    return {"dense": state, "sparse": sparse}


def stored_counts(export: dict[str, dict], parameter_names: set[str]) -> dict[str, int]:
    """Stored parameters of an export: dense parameter values, sparse kernel values, index entries.

    ``parameter_names`` are the model's parameter names (buffers such as batch-norm
    statistics are stored too but are not parameters, as in every parameter count).
    """
    dense_values = sum(v.numel() for k, v in export["dense"].items() if k in parameter_names)
    sparse_values = sum(int(s["values"].numel()) for s in export["sparse"].values())
    index_entries = sum(int(s["crow"].numel() + s["col"].numel()) for s in export["sparse"].values())
    return {"dense_values": dense_values, "sparse_values": sparse_values, "index_entries": index_entries,
            "stored_parameters": dense_values + sparse_values}


def _csr_tensor(store: dict) -> torch.Tensor:
    rows = len(store["crow"]) - 1
    cols = math.prod(store["shape"]) // rows
    return torch.sparse_csr_tensor(store["crow"].long(), store["col"].long(), store["values"], size=(rows, cols),
                                   check_invariants=True)


class SparseMaskedConv2d(nn.Module):
    """Inference of a masked static convolution from its CSR kernel.

    ``groups == 1``: im2col (``F.unfold``) and one sparse-dense product, so only the stored
    non-zeros are multiplied. Grouped (depthwise) kernels are expanded to dense for the
    convolution (PyTorch has no sparse grouped convolution).
    """

    def __init__(self, store: dict, layer: MaskedConv2d) -> None:
        super().__init__()
        for key in ("crow", "col", "values"):
            self.register_buffer(key, store[key].clone())
        self.shape = tuple(store["shape"])
        self.stride, self.padding, self.dilation, self.groups = layer.stride, layer.padding, layer.dilation, layer.groups
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone(), requires_grad=False)

    def kernel(self) -> torch.Tensor:
        """The stored kernel as a ``[C_out, C_in/g * k * k]`` sparse CSR matrix."""
        return _csr_tensor({"crow": self.crow, "col": self.col, "values": self.values, "shape": self.shape})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_out, _, kh, kw = self.shape
        if self.groups != 1:
            weight = self.kernel().to_dense().reshape(self.shape)
            return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        n, _, h, w = x.shape
        cols = F.unfold(x, (kh, kw), self.dilation, self.padding, self.stride)  # [N, R, L]
        out = torch.sparse.mm(self.kernel(), cols.transpose(0, 1).reshape(cols.shape[1], -1))  # [C_out, N * L]
        h_out = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        w_out = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        out = out.reshape(c_out, n, h_out, w_out).transpose(0, 1)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class SparseDynamicConv2d(nn.Module):
    """Inference of SD-Conv from its CSR kernels: sparse aggregation, then one grouped conv.

    The aggregation ``sum_k pi_k (W_k (.) M_k)`` is a sparse-dense product with the stored
    non-zeros only (``[C_out * R, K]`` sparse times ``pi^T``).
    """

    def __init__(self, store: dict, layer: DynamicConv2d) -> None:
        super().__init__()
        K, c_out = store["shape"][:2]
        coo = _csr_tensor(store).to_sparse_coo().coalesce()
        rows, cols = coo.indices()
        row_len = coo.shape[1]
        flat = (rows % c_out) * row_len + cols
        kernels_t = torch.sparse_coo_tensor(torch.stack([flat, rows // c_out]), coo.values(),
                                            size=(c_out * row_len, K), check_invariants=True).coalesce()
        self.register_buffer("index", kernels_t.indices().clone())
        self.register_buffer("values", kernels_t.values().clone())
        self.shape = tuple(store["shape"])
        self.attention = layer.attention
        self.register_buffer("temperature", layer.temperature.detach().clone())
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
        self.stride, self.padding, self.dilation, self.groups = layer.stride, layer.padding, layer.dilation, layer.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        K, c_out = self.shape[:2]
        pi = self.attention(x, self.temperature)
        rows = math.prod(self.shape[1:])
        # indices come from a coalesced tensor (checked when the module was built)
        kernels_t = torch.sparse_coo_tensor(self.index, self.values, size=(rows, K), is_coalesced=True,
                                            check_invariants=False)
        weight = torch.sparse.mm(kernels_t, pi.t().contiguous()).t().reshape(n * c_out, *self.shape[2:])
        bias = (pi @ self.bias).reshape(-1) if self.bias is not None else None
        out = F.conv2d(x.reshape(1, n * c, h, w), weight, bias, self.stride, self.padding, self.dilation,
                       self.groups * n)
        return out.reshape(n, c_out, out.shape[-2], out.shape[-1])


def load_sparse_into(model: nn.Module, export: dict[str, dict]) -> nn.Module:
    """Turn a freshly built ``model`` (same architecture) into the sparse inference model of ``export``.

    Loads the dense tensors, then replaces each masked layer by its sparse inference module.

    Raises
    ------
    ValueError
        If the export does not match the architecture (missing or unexpected tensors).
    """
    sparse_names = set(export["sparse"])
    missing, unexpected = model.load_state_dict(export["dense"], strict=False)
    allowed = {f"{n}.weight" for n in sparse_names}
    bad = [k for k in missing if k not in allowed and not k.endswith("threshold")]
    if bad or unexpected:
        raise ValueError(f"sparse export does not match the model: missing {bad[:5]}, unexpected {unexpected[:5]}")
    for name in sparse_names:
        layer = model.get_submodule(name)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new = (SparseMaskedConv2d(export["sparse"][name], layer) if isinstance(layer, MaskedConv2d)
               else SparseDynamicConv2d(export["sparse"][name], layer))
        setattr(parent, child, new)
    return model.eval()


# ---------------------------------------------------------------------------------------
# The sdconv DAG: data, training, evaluation (entry points of workflow/scripts/sdconv)
# ---------------------------------------------------------------------------------------

NUM_CLASSES: dict[str, int] = {"digits": 10, "nmnist_demo": 10, "cifar100": 100, "imagenet": 1000}
#: ``(C, H, W)`` of one input image per dataset (ImageNet: the loader's crop size).
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {"digits": (1, 8, 8), "nmnist_demo": (2, 34, 34),
                                                 "cifar100": (3, 32, 32)}


def input_shape(exp: dict) -> tuple[int, int, int]:
    """``(C, H, W)`` of the experiment's input images."""
    if exp["dataset"] == "imagenet":
        size = exp.get("loader", {}).get("image_size", 224)
        return (3, size, size)
    return INPUT_SHAPES[exp["dataset"]]


def conv_spec(settings: dict, arm: str) -> ConvSpec:
    """The convolution kind and settings of an arm (``papers.sdconv.dynamic`` and ``.mask``)."""
    dyn = settings["dynamic"]
    return ConvSpec(kind=arm, K=dyn["K"], ratio=dyn["ratio"], mask=MaskSpec.from_config(settings.get("mask")))


def load_split(path: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Images ``[N, C, H, W]`` (``data_static``) or one-frame recordings ``[N, 1, P, H, W]`` (``data_frames``).

    Returns the array, the labels and whether it holds event frames.

    Raises
    ------
    DataError
        If the file lacks ``images``/``frames`` and ``labels``, or holds more than one frame.
    """
    path = Path(path)
    with np.load(path) as z:
        key = "frames" if "frames" in z.files else "images"
        if key not in z.files or "labels" not in z.files:
            raise DataError(f"{path}: expected arrays 'images' (or 'frames') and 'labels', found {z.files}; "
                            "delete the file and rerun the data rule that writes it")
        data, labels = z[key], z["labels"]
    if key == "frames" and data.shape[1] != 1:
        raise DataError(f"{path}: sdconv uses one frame per recording (T=1), this file has T={data.shape[1]}")
    if limit is not None:
        data, labels = data[:limit], labels[:limit]
    return data, labels, key == "frames"


def make_batches(exp: dict, path: str | Path, train: bool, limit: int | None = None,
                 indices: np.ndarray | None = None) -> ArrayBatches | FolderBatches:
    """Batches of one split, time-major ``[1, N, C, H, W]`` (the project's batch format, T = 1).

    ``path`` is an image or frame cache, or for ImageNet the manifest written by
    :func:`prepare_imagenet` (``train`` then picks the train or validation split).
    ``indices`` keeps only those samples of the (limited) file, in that order: the fitting
    or the validation part of the training file (:mod:`reprolab.vision.validation`); they are
    augmented and shuffled only when ``train``.
    """
    if exp["dataset"] == "imagenet":
        if indices is None:
            return imagenet_batches(exp, path, train, limit)
        from reprolab.data.imagenet import imagenet_dataset

        loader = exp.get("loader", {})
        ds = imagenet_dataset(path, "train", train, loader.get("image_size", 224), limit)
        return FolderBatches(torch.utils.data.Subset(ds, indices.tolist()), exp["optim"]["batch_size"], shuffle=train,
                             workers=loader.get("workers", 0))
    data, labels, frames = load_split(path, limit)
    if indices is not None:
        data, labels = data[indices], labels[indices]
    pre = Preprocess(normalize=exp.get("frames", {}).get("normalize", "frame_max")) if frames else Preprocess(
        repeat_T=1)
    aug = Augment(**exp.get("augment", {})) if train else None
    return ArrayBatches(data, labels, exp["optim"]["batch_size"], pre, aug, shuffle=train)


def sample_shape(batches: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` of one sample of a batch source."""
    x, _ = next(batches.epoch(seed=0, epoch=0))
    return tuple(int(d) for d in x.shape[-3:])


def build_model(exp: dict, settings: dict, arm: str, shape: tuple[int, int, int]) -> nn.Module:
    """The experiment's network with the arm's convolutions (``shape`` = ``(C, H, W)`` of the input)."""
    from reprolab.vision.backbones import build_backbone

    return build_backbone(exp["model"], conv_spec(settings, arm), shape[0], NUM_CLASSES[exp["dataset"]],
                          epochs=exp["optim"]["epochs"])


def _record_epoch(model: nn.Module, epoch: int) -> None:
    logbook = model.train_log
    if 0 <= epoch < len(logbook.density):
        logbook.density[epoch] = masked_kernel_density(model)
        logbook.resets[epoch] = total_resets(model)


def advance_clock(model: nn.Module, steps_per_epoch: int, temperature: dict) -> int:
    """Count one optimiser step; set the epoch's temperature; log the previous epoch at its end.

    The clock lives in the model's ``train_log`` buffers, so a run resumed from a
    checkpoint continues the schedule and the per-epoch log exactly where it stopped.

    Returns
    -------
    int
        The current epoch (0-based).
    """
    logbook = model.train_log
    step = int(logbook.step)
    epoch = step // steps_per_epoch
    if step > 0 and step % steps_per_epoch == 0:
        _record_epoch(model, epoch - 1)
    tau = temperature_at(epoch, temperature["start"], temperature["end"], temperature["anneal_epochs"])
    set_temperature(model, tau)
    if epoch < len(logbook.temperature):
        logbook.temperature[epoch] = tau
    logbook.step += 1
    return epoch


def sdconv_step(alpha: float, weight_decay: float, steps_per_epoch: int, temperature: dict) -> StepFn:
    """Training step: cross-entropy + ``alpha * sum exp(-t)`` + ``weight_decay / 2 * ||w||^2``.

    The L2 term is the coupled weight decay of SGD/Adam (same gradient ``weight_decay * w``)
    applied to every parameter except the thresholds (card 2.3: no weight decay on them);
    the optimiser itself then runs with ``weight_decay = 0``.
    """

    def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             backward: Callable[[torch.Tensor], None]) -> tuple[float, torch.Tensor]:
        net = unwrap(model)  # the network itself under DistributedDataParallel
        advance_clock(net, steps_per_epoch, temperature)
        out = model(x)
        loss = F.cross_entropy((out.mean(0) if out.dim() == 3 else out).float(), y)
        if alpha:
            loss = loss + alpha * sparsity_penalty(net)
        if weight_decay:
            l2 = sum(p.pow(2).sum() for n, p in net.named_parameters() if not n.endswith("threshold"))
            loss = loss + 0.5 * weight_decay * l2
        backward(loss)
        return float(loss.detach()), out.detach()

    return step


def fit_and_validation_batches(exp: dict, train_path: str | Path, split: dict[str, np.ndarray]
                               ) -> tuple[ArrayBatches | FolderBatches, ArrayBatches | FolderBatches]:
    """Training batches of the fitting part and evaluation batches of the validation part of the training file."""
    limit = exp.get("limit", {}).get("train")
    return (make_batches(exp, train_path, True, limit, split["fit"]),
            make_batches(exp, train_path, False, limit, split["validation"]))


def train_run(exp: dict, settings: dict, run: str, seed: int, train_path: str | Path, split: dict[str, np.ndarray],
              checkpoint_dir: str | Path, device: str, init_state: dict | None = None,
              progress: bool = True, sync_batchnorm: bool = False) -> tuple[nn.Module, list[dict]]:
    """Train one run (arm and alpha) with one seed on the fitting part; resumable through ``checkpoint_dir``.

    The per-epoch evaluation of :func:`reprolab.snn.training.fit` runs on the validation
    part of the training file, so training never sees the test split.

    Parameters
    ----------
    exp
        Experiment config (dataset, limit, model, optim, augment).
    settings
        The paper's settings (arms, dynamic, mask, temperature, ...).
    run
        Run name (:func:`run_name`).
    split
        ``{"fit": indices, "validation": indices}`` of the training file
        (:func:`reprolab.vision.validation.read_split`).
    init_state
        State dict to start from (SD-Conv initialised from a trained DY-Conv when
        ``init_from: dynamic``), else a fresh initialisation.
    """
    arm, alpha = parse_run(run)
    limit = exp.get("limit", {})
    train, validation = fit_and_validation_batches(exp, train_path, split)
    seed_everything(seed)
    model = build_model(exp, settings, arm, sample_shape(validation))
    if init_state is not None:
        own = {k: v for k, v in init_state.items() if not k.startswith("train_log.")}
        missing, unexpected = model.load_state_dict(own, strict=False)
        bad = [k for k in missing if not k.startswith("train_log.") and not k.endswith("threshold")]
        if bad or unexpected:
            raise ConfigError(f"papers.sdconv.init_from: the initial model does not match {run}: missing {bad[:4]}, "
                              f"unexpected {unexpected[:4]}")
    optim = dict(exp["optim"])
    weight_decay = float(optim.get("weight_decay", 0.0))
    optim["weight_decay"] = 0.0
    spec = TrainSpec.from_config(optim, seed, run=run, l2=weight_decay, model=exp["model"], dataset=exp["dataset"],
                                 limit=limit, augment=exp.get("augment", {}), dynamic=settings["dynamic"],
                                 mask=settings.get("mask"), init=init_state is not None,
                                 fit_samples=len(split["fit"]), fit_digest=int(split["fit"].sum()))
    step = sdconv_step(alpha or 0.0, weight_decay, len(train), settings["dynamic"]["temperature"])
    history = fit(model, train, validation, step, spec, checkpoint_dir, device, progress=progress,
                  sync_batchnorm=sync_batchnorm)
    _record_epoch(model, len(history) - 1)
    return model, history


def save_model(path: str | Path, model: nn.Module, meta: dict) -> None:
    """A ``state_dict`` with what rebuilds the network (not a pickled module), written atomically."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), **meta}, tmp)


def load_model(path: str | Path, exp: dict, settings: dict) -> tuple[nn.Module, dict]:
    """Rebuild a network written by :func:`save_model`; returns it (eval mode) and the file's metadata."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    arm, _ = parse_run(state["run"])
    model = build_model(exp, settings, arm, tuple(state["input_shape"]))
    model.load_state_dict(state["state_dict"])
    return model.eval(), state


def epoch_log(model: nn.Module) -> dict[str, list]:
    """The per-epoch masked-kernel density, safety resets and temperature of a trained model."""
    logbook = model.train_log
    return {"density": [None if math.isnan(v) else v for v in logbook.density.tolist()],
            "resets": logbook.resets.tolist(),
            "temperature": [None if math.isnan(v) else v for v in logbook.temperature.tolist()]}


def run_training(exp: dict, settings: dict, run: str, seed: int, train_path: str, split_path: str,
                 checkpoint_dir: str, device_pref: str, threads: int, out_model: str, out_history: str,
                 init_model: str | None = None, resources: dict | None = None, log_path: str | None = None) -> None:
    """The ``sdconv_train`` rule: train one run and seed on the fitting part of the training file;
    write the model and its per-epoch history with the final validation result (per-sample
    predictions, non-zero parameters), which ``sdconv_select`` chooses alpha from. With
    ``resources`` asking for several processes, training is data-parallel
    (:func:`reprolab.core.distributed.launch_training`)."""
    launch_training(_train_and_save, (exp, settings, run, seed, train_path, split_path, checkpoint_dir, out_model,
                                      out_history, init_model), resources, device_pref, threads, log_path)


def _train_and_save(exp: dict, settings: dict, run: str, seed: int, train_path: str, split_path: str,
                    checkpoint_dir: str, out_model: str, out_history: str, init_model: str | None, *, device: str,
                    sync_batchnorm: bool) -> None:
    """Body of :func:`run_training` in every process; rank 0 writes."""
    from reprolab.vision.validation import read_split

    init_state = None
    if init_model:
        init_state = torch.load(init_model, map_location="cpu", weights_only=False)["state_dict"]
    split = read_split(split_path)
    t0 = time.perf_counter()
    model, history = train_run(exp, settings, run, seed, train_path, split, checkpoint_dir, device, init_state,
                               sync_batchnorm=sync_batchnorm)
    _, validation_batches = fit_and_validation_batches(exp, train_path, split)
    validation = evaluate(model.to(device), validation_batches, device)  # every process: it gathers predictions
    if not is_main():
        return
    model.cpu()
    counts = parameter_counts(model)
    arm, alpha = parse_run(run)
    shape = sample_shape(validation_batches)
    save_model(out_model, model, {"run": run, "arm": arm, "alpha": alpha, "seed": seed, "input_shape": shape})
    per_epoch = epoch_log(model)
    for rec, density, resets, tau in zip(history, per_epoch["density"], per_epoch["resets"],
                                         per_epoch["temperature"], strict=False):
        rec.update(kernel_density=density, resets=resets, temperature=tau)
    write_json(out_history, {"run": run, "arm": arm, "alpha": alpha, "seed": seed, "dataset": exp["dataset"],
                             "device": device, "seconds": time.perf_counter() - t0,
                             "init_from": "dynamic" if init_model else "scratch", "split": str(split_path),
                             "n_fit": len(split["fit"]), "epochs": history,
                             "validation": {"accuracy": validation["accuracy"], "n": validation["n"],
                                            "nonzero": counts["nonzero"], "kernel_nonzero": counts["kernel_nonzero"],
                                            "predictions": validation["predictions"],
                                            "targets": validation["targets"]}})


@torch.no_grad()
def predict(model: nn.Module, batches: Any, device: str, max_batches: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[N, classes]`` and labels of a split, or of its first ``max_batches`` batches (0 = all)."""
    model.eval().to(device)
    outs, labels = [], []
    for i, (x, y) in enumerate(batches.epoch(seed=0, epoch=0, device=device)):
        if max_batches and i >= max_batches:
            break
        out = model(x).float()
        outs.append((out.mean(0) if out.dim() == 3 else out).cpu())
        labels.append(y.cpu())
    return torch.cat(outs), torch.cat(labels)


@torch.no_grad()
def attention_entropies(model: nn.Module, batches: Any, device: str) -> dict[str, float]:
    """Mean entropy of ``pi(x)`` per dynamic layer over a split, divided by ``log K`` (1 = uniform)."""
    sums: dict[str, float] = {}
    count = {"n": 0}
    hooks = []
    for name, layer in replaceable_layers(model).items():
        if isinstance(layer, DynamicConv2d):
            def hook(_m, _inp, out, name=name, K=layer.K):
                sums[name] = sums.get(name, 0.0) + float(attention_entropy(out).sum()) / math.log(K)
            hooks.append(layer.attention.register_forward_hook(hook))
    try:
        model.eval().to(device)
        for x, y in batches.epoch(seed=0, epoch=0, device=device):
            model(x)
            count["n"] += len(y)
    finally:
        for h in hooks:
            h.remove()
    return {k: v / max(count["n"], 1) for k, v in sums.items()}


def check_sparse_inference(model: nn.Module, exp: dict, settings: dict, arm: str, shape: tuple[int, int, int],
                           batches: Any, sparse_path: str | Path, device: str) -> dict[str, Any]:
    """Export ``model`` in sparse form, reload it from disk, and compare it with the dense masked model.

    Returns the stored parameter counts, file sizes and the largest logit difference,
    prediction agreement and both accuracies over the split (its first
    ``settings['sparse_check_batches']`` batches when that is not 0).
    """
    max_batches = int(settings.get("sparse_check_batches", 0))
    export = export_sparse(model.cpu())
    with atomic_path(sparse_path) as tmp:
        torch.save(export, tmp)
    dense_bytes = sum(v.numel() * v.element_size() for k, v in model.state_dict().items() if not k.endswith("threshold"))
    loaded = torch.load(sparse_path, map_location="cpu", weights_only=False)
    sparse_model = load_sparse_into(build_model(exp, settings, arm, shape), loaded)
    dense_logits, labels = predict(model, batches, device, max_batches)
    sparse_logits, _ = predict(sparse_model, batches, device, max_batches)
    names = {n for n, _ in model.named_parameters() if not n.endswith("threshold")}
    return {
        **stored_counts(loaded, names),
        "file_bytes": Path(sparse_path).stat().st_size, "sparse_tensor_bytes": _tensor_bytes(loaded),
        "dense_tensor_bytes": dense_bytes,
        "max_abs_logit_diff": float((dense_logits - sparse_logits).abs().max()),
        "prediction_agreement": float((dense_logits.argmax(1) == sparse_logits.argmax(1)).float().mean()),
        "dense_accuracy": float((dense_logits.argmax(1) == labels).float().mean()),
        "sparse_accuracy": float((sparse_logits.argmax(1) == labels).float().mean()),
        "sparse_layers": sorted(loaded["sparse"]), "n_compared": len(labels),
    }


def _tensor_bytes(tree: Any) -> int:
    """Bytes of every tensor in a nested dict (what a file stores, without the container's overhead)."""
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, dict):
        return sum(_tensor_bytes(v) for v in tree.values())
    return 0


def run_evaluation(exp: dict, settings: dict, model_path: str, test_path: str, flops_path: str, exp_name: str,
                   device_pref: str, threads: int, out_eval: str, out_sparse: str) -> None:
    """The ``sdconv_evaluate`` rule: accuracy, parameters, sparsity, multiply-adds, attention entropy,
    and inference from the exported sparse model.

    The dense multiply-adds of the run's architecture come from ``flops_path`` (counted
    once per experiment and arm by :func:`flop_check`); the masks of this model give the
    count with non-zero weights only.
    """
    from reprolab.core.io import read_json
    from reprolab.vision.flops import sparse_madds

    set_threads(threads)
    device = choose_device(device_pref)
    model, meta = load_model(model_path, exp, settings)
    shape = tuple(meta["input_shape"])
    counted = read_json(flops_path)["architectures"][exp_name]
    if tuple(counted["input_shape"]) != shape:
        raise DataError(f"{flops_path}: counted for input {counted['input_shape']}, but {model_path} takes {shape}; "
                        "delete the file and rerun")
    test = make_batches(exp, test_path, False, exp.get("limit", {}).get("test"))
    result = evaluate(model.to(device), test, device)
    sparse = check_sparse_inference(model, exp, settings, meta["arm"], shape, test, out_sparse, device)
    model.cpu()
    write_json(out_eval, {
        "run": meta["run"], "arm": meta["arm"], "alpha": meta["alpha"], "seed": meta["seed"],
        "dataset": exp["dataset"], "accuracy": result["accuracy"], "n_test": result["n"],
        "num_classes": NUM_CLASSES[exp["dataset"]],
        "predictions": result["predictions"], "targets": result["targets"],
        "params": parameter_counts(model), "layers": layer_sparsity(model),
        "madds": sparse_madds(model, counted["arms"][meta["arm"]]),
        "attention_entropy": attention_entropies(model, test, device), "sparse_inference": sparse,
        "input_shape": list(shape),
    })


def flop_check(out: str | Path, settings: dict | None = None) -> dict[str, Any]:
    """The ``sdconv_flops`` rule: the library's count checked against hand counts on tiny layers,
    and the dense multiply-adds of every experiment's architecture for every arm.

    Returns (and writes to ``out``) ``cases`` (tiny layers: hand vs library), ``all_match``
    and ``architectures``: ``{experiment: {input_shape, arms: {arm: dense_madds(...)}}}``.
    """
    from reprolab.vision.flops import conv_madds, dense_madds, dynamic_conv_madds

    def conv(c_in: int, c_out: int, stride: int, groups: int = 1) -> dict[str, int]:
        return {"in_channels": c_in, "out_channels": c_out, "kernel_size": 3, "stride": stride, "padding": 1,
                "groups": groups}

    torch.manual_seed(0)
    rows = []
    cases = [("static", conv(3, 5, 1), (3, 7, 7)), ("dynamic", conv(4, 6, 2), (4, 9, 9)),
             ("dynamic", conv(8, 8, 1, groups=8), (8, 5, 5))]
    for kind, kw, shape in cases:
        layer = make_conv(ConvSpec(kind), **kw)
        h_out = (shape[1] + 2 * kw["padding"] - kw["kernel_size"]) // kw["stride"] + 1
        if kind == "static":
            hand = {"conv": conv_madds((h_out, h_out), kw["in_channels"], kw["out_channels"], kw["kernel_size"],
                                       kw["groups"])}
            library = _static_library_madds(layer, shape)
        else:
            hand = dynamic_conv_madds(layer, (h_out, h_out))
            lib = dense_madds(layer, shape)["layers"][""]
            library = {k: lib[k] for k in ("attention", "aggregation", "conv")}
        rows.append({"layer": f"{kind} {kw}", "input": list(shape), "hand": hand, "library": library,
                     "match": hand == library})
    architectures = {}
    for name, exp in (settings or {}).get("experiments", {}).items():
        shape = input_shape(exp)
        arms = {arm: dense_madds(build_model(exp, settings, arm, shape), shape) for arm in settings["arms"]}
        architectures[name] = {"input_shape": list(shape), "arms": arms}
    result = {"library": "torch.utils.flop_counter.FlopCounterMode", "cases": rows,
              "all_match": all(r["match"] for r in rows), "architectures": architectures}
    write_json(out, result)
    return result


def _static_library_madds(layer: nn.Module, shape: tuple[int, int, int]) -> dict[str, int]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        layer(torch.zeros(1, *shape))
    return {"conv": counter.get_total_flops() // 2}

"""ANN-to-SNN conversion with layer-wise parameter calibration.

Li, Deng, Dong, Gu, "Converting Artificial Neural Networks to Spiking Neural Networks via
Parameter Calibration", arXiv:2205.10121 (2022); precursor: "A Free Lunch From ANN",
ICML 2021, arXiv:2106.06984. Official code yhhhli/SNN_Calibration (read, not copied).

Conversion (Sec. 2.1-2.2 of the paper card):

1. Fold every batch norm into its conv, ``W' = W gamma/sigma``, ``b' = beta - gamma mu/sigma``
   (:func:`fold_batch_norm`).
2. Replace every ReLU by an integrate-and-fire neuron with reset by subtraction
   (:class:`IFNeuron`): ``v <- v + z_t + V/(2T)``, ``s_t = V 1[v >= V]``, ``v <- v - s_t``;
   spikes carry the amplitude ``V`` and average pooling is a spiking layer.
3. Feed the analog image at every step and sum the final linear layer's output over ``T``
   (:class:`ConvertedSNN`).

For a constant drive ``z`` the mean output of the neuron is the quantiser
:func:`clip_floor` ``clip(V/T floor(T z/V [+ 1/2]), 0, V)`` (the ``1/2`` with the shift);
the ANN gives ``ReLU(z)``. Their difference splits into a clipping error (``z > V``) and a
flooring error (``0 <= z <= V``); :func:`local_error_split`.

Calibration (arXiv:2205.10121, official ``models/calibration.py``), layer by layer in
forward order, each layer measured with all earlier layers already converted and
calibrated, ``s`` the SNN layer output averaged over ``T`` and ``r`` the ANN's ReLU output:

- thresholds: ``V = max(a)`` (naive) or the ``V`` in ``max(a) (1 - 0.01 i)``, ``i < 95``,
  that minimises ``||a - ClipFloor(a; T, V)||^2`` (:func:`scan_thresholds`), EMA over batches;
- bias calibration (light): ``b_c <- b_c - (E_{N,H,W}[s_c] - E_{N,H,W}[r_c])``;
- potential calibration: ``v_init <- T (E_N[r] - E_N[s])`` per neuron;
- weight calibration: minimise ``sum_c E[(ClipFloor_STE(W x_hat + b [+ res]) - r)^2]`` over
  ``W`` with Adam and cosine annealing on cached time-averaged SNN inputs ``x_hat``.

Differences from the official code, on purpose (card Sec. 7): ``T`` is passed through
everywhere (the official scripts hard-code 32); calibration batches are un-augmented by
default; the threshold scan and the weight-calibration loss use the neuron's own quantiser
(rounding when the ``V/(2T)`` shift is on, where the official code scans with flooring);
calibrated SNNs are saved as state dicts with thresholds and initial potentials.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.errors import ConfigError, DataError
from reprolab.snn.ann import ConvBN, Unit, build_ann, units_of

log = logging.getLogger("reprolab.snn.calib")

#: Calibration steps a pipeline may chain (config ``papers.calib.pipelines``).
THRESHOLD_STEPS = ("threshold_max", "threshold_mse")
CALIBRATION_STEPS = ("bias", "potential", "weight")
NUM_CLASSES = {"cifar100": 100}


# --------------------------------------------------------------------------------------
# The IF neuron and its rate function
# --------------------------------------------------------------------------------------

def clip_floor(x: torch.Tensor, T: int, threshold: torch.Tensor | float, shift: bool = False,
               ste: bool = False) -> torch.Tensor:
    """Mean output over ``T`` steps of an IF neuron (reset by subtraction) driven by constant ``x``.

    ``ClipFloor(x; T, V) = clip(V/T floor(T x / V), 0, V)`` (card Sec. 2.3); with the
    ``V/(2T)`` shift the floor becomes rounding, ``floor(T x / V + 1/2)``.

    Parameters
    ----------
    x
        Constant input current per step.
    T
        Time steps.
    threshold
        ``V_th`` (a number or a tensor broadcastable to ``x``).
    shift
        The ``V_th/(2T)`` per-step shift of the official ``SpikeModule`` (``enable_shift``).
    ste
        Straight-through estimator for the floor (identity gradient), for weight calibration.
    """
    scaled = x / threshold * T + (0.5 if shift else 0.0)
    floored = scaled.floor()
    if ste:
        floored = scaled + (floored - scaled).detach()
    return floored.clamp(0, T) * threshold / T


class IFNeuron(nn.Module):
    """Integrate-and-fire neuron with reset by subtraction, multi-step, spikes of amplitude ``V``.

    Input ``[T*N, ...]`` (time folded into the batch) or ``[N, ...]`` for a drive constant in
    time (the analog image fed at every step); output ``[T*N, ...]``. For every step ``t``:
    ``v <- v + z_t (+ V/(2T))``; ``s_t = V 1[v >= V]``; ``v <- v - s_t``; ``v`` starts at
    ``v_init`` (potential calibration) or 0 (arXiv:2205.10121; official ``SpikeModule``).

    Attributes
    ----------
    threshold
        ``V_th``: a 0-d tensor (layer-wise) or ``[C]`` (channel-wise).
    v_init
        Initial membrane potential per neuron (shape of one sample's output), or ``None``.
    T, shift
        Time steps and whether the ``V/(2T)`` shift is on.
    """

    def __init__(self, threshold: torch.Tensor, T: int, shift: bool = True) -> None:
        super().__init__()
        if T < 1:
            raise ConfigError(f"time steps T must be >= 1, got {T}")
        self.threshold = threshold.detach().clone().float()
        self.v_init: torch.Tensor | None = None
        self.T, self.shift = int(T), bool(shift)
        self.n_batch = 0

    def _broadcast(self, value: torch.Tensor, ndim: int) -> torch.Tensor:
        """Shape a per-channel threshold as ``[C, 1, 1]`` for ``[..., C, H, W]`` inputs."""
        if value.dim() == 0:
            return value
        return value.view(-1, *([1] * (ndim - 2)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        T, n = self.T, self.n_batch or z.shape[0] // self.T
        if z.shape[0] == n * T:
            drive = z.view(T, n, *z.shape[1:])
        elif z.shape[0] == n:
            drive = z.unsqueeze(0).expand(T, *z.shape)
        else:
            raise RuntimeError(f"IFNeuron got a batch of {z.shape[0]} for T={T} and {n} samples")
        V = self._broadcast(self.threshold.to(z.device), z.dim())
        bias = V / (2 * T) if self.shift else torch.zeros((), device=z.device)
        v = torch.zeros_like(drive[0]) if self.v_init is None else self.v_init.to(z.device).expand_as(drive[0]).clone()
        out = torch.empty(drive.shape, dtype=z.dtype, device=z.device)
        for t in range(T):  # the membrane recurrence; every step is one vectorised update
            v = v + drive[t] + bias
            spikes = (v >= V).to(z.dtype) * V
            v = v - spikes
            out[t] = spikes
        return out.flatten(0, 1)


class ConvertedSNN(nn.Module):
    """A BN-folded network whose ReLUs are :class:`IFNeuron`; analog input at every step.

    ``forward(x)`` takes images ``[N, ...]`` and returns the classifier output summed over
    the ``T`` steps ``[N, classes]`` (official ``SpikeModel``: ``out += model(input)``).
    """

    def __init__(self, net: nn.Module, T: int) -> None:
        super().__init__()
        self.net, self.T = net, int(T)

    def neurons(self) -> list[IFNeuron]:
        return [u.act for u in units_of(self.net) if isinstance(u.act, IFNeuron)]

    def spiking_units(self) -> list[Unit]:
        """Units whose activation is an IF neuron, in forward order."""
        return [u for u in units_of(self.net) if isinstance(u.act, IFNeuron)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        for neuron in self.neurons():
            neuron.T, neuron.n_batch = self.T, n
        out = self.net(x)
        if out.shape[0] == n * self.T:
            return out.view(self.T, n, *out.shape[1:]).sum(0)
        return out * self.T  # no neuron before the head: the output is constant over time


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BN folded into its conv (card Sec. 2.1, step 2).

    ``W' = W gamma / sigma`` and ``b' = beta + gamma (b - mu) / sigma`` per output channel with
    ``sigma = sqrt(var + eps)``; the BN becomes the identity. The result computes the same
    function as ``model`` in evaluation mode.
    """
    folded = copy.deepcopy(model).eval()
    for m in folded.modules():
        if isinstance(m, ConvBN) and isinstance(m.bn, nn.BatchNorm2d):
            bn, conv = m.bn, m.conv
            sigma = torch.sqrt(bn.running_var + bn.eps)
            gamma = bn.weight if bn.affine else torch.ones_like(sigma)
            beta = bn.bias if bn.affine else torch.zeros_like(sigma)
            scale = (gamma / sigma).detach()
            bias0 = conv.bias.detach() if conv.bias is not None else torch.zeros_like(sigma)
            with torch.no_grad():
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter((beta + scale * (bias0 - bn.running_mean)).detach().clone())
            m.bn = nn.Identity()
    return folded


def convert(folded: nn.Module, thresholds: Sequence[torch.Tensor], T: int, shift: bool = True,
            spiking_pool: bool = True) -> ConvertedSNN:
    """Copy a BN-folded ANN and replace its ReLUs by IF neurons with the given thresholds.

    Parameters
    ----------
    folded
        Output of :func:`fold_batch_norm`.
    thresholds
        One ``V_th`` per converted unit (see :func:`convertible_units`).
    T
        Time steps (from the config; every neuron and quantiser uses it).
    shift
        The ``V_th/(2T)`` per-step shift.
    spiking_pool
        Average pooling as a spiking layer (``AvgPoolConv``); False keeps it linear on spikes.
    """
    net = copy.deepcopy(folded)
    units = convertible_units(net, spiking_pool)
    if len(units) != len(thresholds):
        raise ValueError(f"{len(thresholds)} thresholds for {len(units)} spiking layers")
    for unit, V in zip(units, thresholds, strict=True):
        unit.act = IFNeuron(torch.as_tensor(V), T, shift)
    return ConvertedSNN(net, T).eval()


def convertible_units(net: nn.Module, spiking_pool: bool = True) -> list[Unit]:
    """Units that become spiking layers: every conv unit, and pooling units if ``spiking_pool``."""
    return [u for u in units_of(net) if spiking_pool or not u.pooling]


# --------------------------------------------------------------------------------------
# Layer inputs and outputs (forward hooks)
# --------------------------------------------------------------------------------------

class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the layer of interest has run."""


@dataclass
class LayerIO:
    """What one unit saw in one forward pass, averaged over time for an SNN.

    Attributes
    ----------
    inputs
        Input of the synapse (``[N, ...]``).
    residual
        Residual current added to the synapse output, or ``None``.
    output
        ReLU output (ANN) or mean spike output ``sum_t s_t / T`` (SNN).
    """

    inputs: torch.Tensor
    residual: torch.Tensor | None
    output: torch.Tensor


def _time_mean(x: torch.Tensor, T: int, n: int) -> torch.Tensor:
    """``[T*N, ...] -> [N, ...]`` mean over time; a constant ``[N, ...]`` input is returned as is."""
    if T == 1 or x.shape[0] == n:
        return x
    return x.view(T, n, *x.shape[1:]).mean(0)


@torch.no_grad()
def record_units(model: nn.Module, units: Sequence[Unit], x: torch.Tensor, T: int = 1,
                 stop_after: Unit | None = None, keep_inputs: bool = False) -> dict[int, LayerIO]:
    """Run ``model`` on ``x`` and return every listed unit's (time-averaged) input and output.

    Parameters
    ----------
    model
        The folded ANN (``T = 1``) or a :class:`ConvertedSNN` (its ``T``).
    units
        Units of ``model`` to record, keyed in the result by their position in this list.
    stop_after
        End the forward pass after this unit (calibration of one layer needs no more).
    keep_inputs
        Also keep synapse inputs and residuals (weight calibration); otherwise only outputs.
    """
    n = x.shape[0]
    found: dict[int, LayerIO] = {}
    handles = []

    def hook_for(index: int, unit: Unit):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            inputs = _time_mean(args[0], T, n) if keep_inputs else args[0][:0]
            residual = _time_mean(args[1], T, n) if keep_inputs and len(args) > 1 and args[1] is not None else None
            found[index] = LayerIO(inputs, residual, _time_mean(output, T, n))
            if unit is stop_after:
                raise _StopForward
        return hook

    for i, unit in enumerate(units):
        handles.append(unit.register_forward_hook(hook_for(i, unit)))
    try:
        model(x)
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    return found


def ann_outputs(folded: nn.Module, units: Sequence[Unit], x: torch.Tensor) -> list[torch.Tensor]:
    """ReLU outputs of ``units`` of the folded ANN for images ``x``."""
    rec = record_units(folded, units, x)
    return [rec[i].output for i in range(len(units))]


# --------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------

def mse_threshold(acts: torch.Tensor, T: int, shift: bool = True, channel_wise: bool = False,
                  candidates: int = 95, step: float = 0.01, max_elements: int = 1 << 24) -> torch.Tensor:
    """The threshold of the card's grid search (Sec. 2.4; official ``find_threshold_mse``).

    Candidates ``V_i = max(a) (1 - step i)``, ``i = 0..candidates-1``; returns the ``V_i``
    minimising ``||a - ClipFloor(a; T, V_i)||^2`` (first minimum). The quantiser is the
    neuron's own (rounding when ``shift``). Vectorised over candidates in memory-bounded chunks.

    Parameters
    ----------
    acts
        ANN ReLU outputs of one layer ``[N, C, ...]``.
    channel_wise
        One threshold per channel (dimension 1) instead of one per layer.

    Returns
    -------
    torch.Tensor
        0-d (layer-wise) or ``[C]`` (channel-wise).
    """
    a = acts.detach().float()
    a = a.transpose(0, 1).reshape(a.shape[1], -1) if channel_wise else a.reshape(1, -1)  # [G, M]
    peak = a.amax(dim=1).clamp(min=1e-8)  # [G]
    scales = 1.0 - step * torch.arange(candidates, dtype=a.dtype, device=a.device)
    errors = torch.empty(candidates, a.shape[0], dtype=a.dtype, device=a.device)
    chunk = max(1, max_elements // max(a.numel(), 1))
    for lo in range(0, candidates, chunk):
        V = scales[lo:lo + chunk, None, None] * peak[None, :, None]  # [K, G, 1]
        errors[lo:lo + chunk] = (clip_floor(a[None], T, V, shift) - a[None]).pow(2).sum(-1)
    best = errors.argmin(dim=0)  # first minimum, as the official strict '<' scan
    V = scales[best] * peak
    return V if channel_wise else V[0]


def max_threshold(acts: torch.Tensor, channel_wise: bool = False) -> torch.Tensor:
    """``V = max(a)`` of a layer (or per channel): the naive conversion's threshold."""
    a = acts.detach().float()
    if channel_wise:
        return a.transpose(0, 1).reshape(a.shape[1], -1).amax(1).clamp(min=1e-8)
    return a.max().clamp(min=1e-8)


@dataclass
class ThresholdSet:
    """Thresholds of every converted unit, for the naive and the MSE method at each ``T``.

    Attributes
    ----------
    max
        ``V = max(a)`` per unit (EMA over batches); also the F4 reference.
    mse
        ``{T: [V per unit]}`` from :func:`mse_threshold` (EMA over batches).
    """

    max: list[torch.Tensor]
    mse: dict[int, list[torch.Tensor]]

    def for_step(self, step: str, T: int) -> list[torch.Tensor]:
        return self.max if step == "threshold_max" else self.mse[T]


def _ema(old: torch.Tensor | None, new: torch.Tensor, momentum: float) -> torch.Tensor:
    return new if old is None else momentum * old + (1 - momentum) * new


def scan_thresholds(folded: nn.Module, units: Sequence[Unit], batches: Sequence[torch.Tensor], Ts: Sequence[int],
                    shift: bool = True, channel_wise: bool = False, momentum: float = 0.9, candidates: int = 95,
                    step: float = 0.01) -> ThresholdSet:
    """Both threshold methods for every ``T`` from the same ANN activations.

    Per batch, each layer's ReLU outputs give ``max(a)`` and the MSE threshold at every ``T``;
    the values are smoothed over the batches with an EMA (``momentum`` 0.9 and 7 batches in
    the official ``get_maximum_activation(iters=5)``). BN must already be folded (card Sec. 7).
    """
    max_v: list[torch.Tensor | None] = [None] * len(units)
    mse_v: dict[int, list[torch.Tensor | None]] = {int(T): [None] * len(units) for T in Ts}
    for x in batches:
        acts = ann_outputs(folded, units, x)
        for i, a in enumerate(acts):
            max_v[i] = _ema(max_v[i], max_threshold(a, channel_wise), momentum)
            for T in mse_v:
                mse_v[T][i] = _ema(mse_v[T][i], mse_threshold(a, T, shift, channel_wise, candidates, step), momentum)
    return ThresholdSet(max=list(max_v), mse={T: list(v) for T, v in mse_v.items()})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------

def _synapse_conv(unit: Unit) -> nn.Conv2d:
    return unit.synapse.conv


@torch.no_grad()
def bias_calibration(snn: ConvertedSNN, folded: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Light calibration: shift each layer's bias by the per-channel mean output error.

    ``b_c <- b_c - (E_{N,H,W}[s_c] - E_{N,H,W}[r_c])`` for every spiking layer in forward
    order, each measured on the SNN with the earlier layers already corrected
    (official ``emp_bias_corr``, ``correct_mempot=False``). Modifies ``snn`` in place.

    Returns
    -------
    list of torch.Tensor
        The per-channel correction applied to each layer.
    """
    units = snn.spiking_units()
    targets = ann_outputs(folded, convertible_like(folded, snn), x)
    corrections = []
    for i, unit in enumerate(units):
        s = record_units(snn, [unit], x, snn.T, stop_after=unit)[0].output
        dims = [d for d in range(s.dim()) if d != 1]
        delta = s.mean(dims) - targets[i].mean(dims)
        conv = _synapse_conv(unit)
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels, device=s.device))
        conv.bias.sub_(delta)
        corrections.append(delta)
    return corrections


@torch.no_grad()
def potential_calibration(snn: ConvertedSNN, folded: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Potential calibration: ``v_init <- T (E_N[r] - E_N[s])`` per neuron, layer by layer.

    The initial membrane potential of every neuron takes the mean (over the batch only)
    rate error times ``T`` (official ``emp_bias_corr``, ``correct_mempot=True``). Modifies
    ``snn`` in place; returns the new initial potentials.
    """
    units = snn.spiking_units()
    targets = ann_outputs(folded, convertible_like(folded, snn), x)
    potentials = []
    for i, unit in enumerate(units):
        s = record_units(snn, [unit], x, snn.T, stop_after=unit)[0].output
        v0 = snn.T * (targets[i].mean(0) - s.mean(0))
        unit.act.v_init = v0
        potentials.append(v0)
    return potentials


@dataclass
class WeightCalibrationLog:
    """Loss of weight calibration per layer: first and last 5 % of the iterations (mean)."""

    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)


def weight_calibration(snn: ConvertedSNN, folded: nn.Module, images: torch.Tensor, iters: int = 5000,
                       lr: float = 4e-5, batch_size: int = 32, cache_batch: int = 32,
                       generator: torch.Generator | None = None) -> WeightCalibrationLog:
    """Weight calibration (official ``weights_cali_model``), layer by layer in forward order.

    For each layer: cache the time-averaged SNN input ``x_hat`` (and residual) of ``images``
    with the earlier layers already calibrated, and the ANN target ``r``; then optimise the
    weights only (bias fixed) with Adam and cosine annealing to 0 on minibatches of cached
    samples, loss ``sum_c mean_{N,H,W} (ClipFloor_STE(W x_hat + b [+ res]) - r)^2``.
    Modifies ``snn`` in place.
    """
    units = snn.spiking_units()
    ref_units = convertible_like(folded, snn)
    gen = generator or torch.Generator().manual_seed(0)
    result = WeightCalibrationLog()
    for i, unit in enumerate(units):
        inputs, residuals, targets = [], [], []
        for lo in range(0, len(images), cache_batch):
            xb = images[lo:lo + cache_batch]
            targets.append(record_units(folded, [ref_units[i]], xb, stop_after=ref_units[i])[0].output)
            io = record_units(snn, [unit], xb, snn.T, stop_after=unit, keep_inputs=True)[0]
            inputs.append(io.inputs)
            residuals.append(io.residual)
        x_hat, r = torch.cat(inputs), torch.cat(targets)
        res = torch.cat(residuals) if residuals[0] is not None else None
        first, last = _fit_layer_weights(unit, x_hat, res, r, snn.T, iters, lr, batch_size, gen)
        result.first.append(first)
        result.last.append(last)
        log.info("weight calibration, layer %d: loss %.5g -> %.5g", i, first, last)
    return result


def _fit_layer_weights(unit: Unit, x_hat: torch.Tensor, res: torch.Tensor | None, r: torch.Tensor, T: int,
                       iters: int, lr: float, batch_size: int, gen: torch.Generator) -> tuple[float, float]:
    conv = _synapse_conv(unit)
    neuron: IFNeuron = unit.act
    V = neuron._broadcast(neuron.threshold.to(x_hat.device), r.dim())
    weight = conv.weight.detach().clone().requires_grad_(True)
    bias = conv.bias.detach() if conv.bias is not None else None
    optimizer = torch.optim.Adam([weight], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iters, eta_min=0.0)
    window = max(1, iters // 20)
    losses = []
    for _ in range(iters):
        idx = torch.randint(0, len(x_hat), (min(batch_size, len(x_hat)),), generator=gen).to(x_hat.device)
        z = F.conv2d(x_hat[idx], weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        if res is not None:
            z = z + res[idx]
        out = clip_floor(z, T, V, neuron.shift, ste=True)
        loss = (out - r[idx]).pow(2).sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        conv.weight.copy_(weight.detach())
    return float(np.mean(losses[:window])), float(np.mean(losses[-window:]))


def convertible_like(folded: nn.Module, snn: ConvertedSNN) -> list[Unit]:
    """The folded ANN's units matching ``snn.spiking_units()`` one to one (same positions)."""
    spiking = {id(u) for u in snn.spiking_units()}
    positions = [i for i, u in enumerate(units_of(snn.net)) if id(u) in spiking]
    ann_units = units_of(folded)
    return [ann_units[i] for i in positions]


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------

@torch.no_grad()
def layer_mismatch(snn: ConvertedSNN, folded: nn.Module, x: torch.Tensor) -> list[float]:
    """Per spiking layer, ``E||s - r||^2`` per element: time-averaged SNN output vs ANN output.

    Both are computed on the same images; ``s`` carries the errors of all earlier layers
    (the quantity calibration minimises, card Sec. 2.3).
    """
    units = snn.spiking_units()
    snn_rec = record_units(snn, units, x, snn.T)
    ann_rec = record_units(folded, convertible_like(folded, snn), x)
    return [float((snn_rec[i].output - ann_rec[i].output).pow(2).mean()) for i in range(len(units))]


@torch.no_grad()
def local_error_split(acts: torch.Tensor, threshold: torch.Tensor, T: int, shift: bool = True,
                      channel_wise: bool = False) -> tuple[float, float]:
    """Local conversion error of one layer split into clipping and flooring parts.

    For ANN activations ``a = ReLU(z)``, ``e = ClipFloor(a) - a``: the clipping error is
    ``e`` where ``a > V`` (``V - a``), the flooring (rounding) error is ``e`` where
    ``0 <= a <= V`` (card Sec. 2.3). Returns the two parts' mean squares per element; they
    sum to the layer's ``E[e^2]``.
    """
    a = acts.float()
    V = threshold.view(1, -1, *([1] * (a.dim() - 2))) if channel_wise else threshold
    err = clip_floor(a, T, V, shift) - a
    clipped = a > V
    n = a.numel()
    return float(err[clipped].pow(2).sum() / n), float(err[~clipped].pow(2).sum() / n)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100) -> float:
    """Top-1 accuracy of ``model`` (ANN logits or SNN summed outputs) on in-memory images."""
    model.eval()
    correct = 0
    for lo in range(0, len(images), batch_size):
        out = model(images[lo:lo + batch_size])
        correct += int((out.argmax(-1) == labels[lo:lo + batch_size]).sum())
    return correct / max(len(images), 1)


# --------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------

def snn_state(snn: ConvertedSNN) -> dict[str, Any]:
    """A calibrated SNN as tensors: weights, and per neuron its threshold and initial potential.

    Not a pickled module (card Sec. 7): rebuild with :func:`load_snn_state`.
    """
    return {
        "T": snn.T,
        "state_dict": {k: v.detach().cpu() for k, v in snn.net.state_dict().items()},
        "neurons": [{"threshold": n.threshold.cpu(), "shift": n.shift,
                     "v_init": None if n.v_init is None else n.v_init.cpu()} for n in snn.neurons()],
    }


def load_snn_state(folded: nn.Module, state: dict[str, Any], spiking_pool: bool = True) -> ConvertedSNN:
    """Rebuild a calibrated SNN from :func:`snn_state` and the folded network's structure."""
    neurons = state["neurons"]
    snn = convert(folded, [n["threshold"] for n in neurons], state["T"], neurons[0]["shift"], spiking_pool)
    snn.net.load_state_dict(state["state_dict"])
    for neuron, saved in zip(snn.neurons(), neurons, strict=True):
        neuron.v_init = saved["v_init"]
    return snn


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

def normalise_counts(frames: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Event-count images ``[N, P, H, W]`` divided by each image's percentile, clipped to [0, 1].

    The card's demo preprocessing of N-MNIST: all events of a recording summed per polarity
    into one frame, then divided by its 99th percentile.
    """
    x = frames.astype(np.float32)
    scale = np.percentile(x.reshape(len(x), -1), percentile, axis=1).astype(np.float32)
    scale = np.maximum(scale, 1.0).reshape(-1, *([1] * (x.ndim - 1)))
    return np.clip(x / scale, 0.0, 1.0)


def load_images(path: str | Path, dataset: str, limit: int | None = None,
                percentile: float = 99.0) -> tuple[np.ndarray, np.ndarray]:
    """Static images ``[N, C, H, W]`` float32 and labels from a data-rule cache.

    ``images`` caches (digits, CIFAR) are used as written; event ``frames`` caches must hold
    one frame per recording (``*_T1_count.npz``) and are normalised by :func:`normalise_counts`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: missing; run snakemake on it (rules data_static / data_frames) first")
    with np.load(path) as z:
        if "images" in z.files:
            images = z["images"].astype(np.float32)
        elif "frames" in z.files:
            frames = z["frames"]
            if frames.shape[1] != 1:
                raise DataError(f"{path}: {frames.shape[1]} frames per recording; calib needs the T1 cache "
                                f"({path.name.split('_T')[0]}_T1_count.npz)")
            images = normalise_counts(frames[:, 0], percentile)
        else:
            raise DataError(f"{path}: neither 'images' nor 'frames' in it; delete it and rerun its data rule")
        labels = z["labels"].astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels; delete it and rerun its data rule")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    log.info("%s (%s): %d images of shape %s", path, dataset, len(images), images.shape[1:])
    return images, labels

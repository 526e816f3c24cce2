"""ANN-to-SNN conversion with layer-wise parameter calibration.

Li, Deng, Dong, Gu, "Converting Artificial Neural Networks to Spiking Neural Networks via
Parameter Calibration", arXiv:2205.10121 (2022); precursor: "A Free Lunch From ANN",
ICML 2021, arXiv:2106.06984. Official code yhhhli/SNN_Calibration (read, not copied).

Conversion (Sec. 2.1-2.2 of the paper card):

1. Fold every batch norm into its conv, ``W' = W gamma/sigma``, ``b' = beta - gamma mu/sigma``
   (:func:`fold_batch_norm`).
2. Replace every ReLU by an integrate-and-fire neuron with reset by subtraction
   (:class:`IFNeuron`): ``v <- v + z_t + V/(2T)``, ``s_t = V 1[v >= V]``, ``v <- v - s_t``;
   spikes carry the amplitude ``V``. Average pooling stays linear over spikes, as the
   official models' ``nn.AvgPool2d`` (``conversion.pool: linear``); ``spiking`` makes each
   pooling layer a spiking layer (the repository's unused ``AvgPoolConv``), a labelled variant.
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.distributed import is_main, launch_training, world_size
from reprolab.core.errors import ConfigError, DataError
from reprolab.snn.ann import ConvBN, Unit, build_ann, load_torchvision_weights, units_of
from reprolab.snn.calib_plan import (  # noqa: F401 (part of this module's interface)
    CALIBRATION_STEPS,
    EXPERIMENT_OVERRIDES,
    THRESHOLD_STEPS,
    check_settings,
    experiment_settings,
)

log = logging.getLogger("reprolab.snn.calib")

NUM_CLASSES = {"cifar100": 100, "imagenet": 1000}


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
        V = self._broadcast(self.threshold.to(z.device), z.dim())
        if self.shift:
            z = z + V / (2 * T)  # the per-step shift enters the drive once, before the loop
        if z.shape[0] == n * T:
            drive = z.view(T, n, *z.shape[1:])
        elif z.shape[0] == n:
            drive = z.unsqueeze(0).expand(T, *z.shape)
        else:
            raise RuntimeError(f"IFNeuron got a batch of {z.shape[0]} for T={T} and {n} samples")
        v = torch.zeros_like(drive[0]) if self.v_init is None else self.v_init.to(z.device).expand_as(drive[0]).clone()
        out = torch.empty(drive.shape, dtype=z.dtype, device=z.device)
        for t in range(T):  # the membrane recurrence; every step is one vectorised update
            v.add_(drive[t])
            torch.mul(v >= V, V, out=out[t])
            v.sub_(out[t])
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
            spiking_pool: bool = False) -> ConvertedSNN:
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
        Average pooling as a spiking layer (the variant ``AvgPoolConv``); False (the official
        ``nn.AvgPool2d``) keeps it linear on spikes.
    """
    net = copy.deepcopy(folded)
    units = convertible_units(net, spiking_pool)
    if len(units) != len(thresholds):
        raise ValueError(f"{len(thresholds)} thresholds for {len(units)} spiking layers")
    for unit, V in zip(units, thresholds, strict=True):
        unit.act = IFNeuron(torch.as_tensor(V), T, shift)
    return ConvertedSNN(net, T).eval()


def convertible_units(net: nn.Module, spiking_pool: bool = False) -> list[Unit]:
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

@numba.njit(cache=True, nogil=True)
def _grid_errors(acts: np.ndarray, peaks: np.ndarray, scales: np.ndarray, T: int, offset: float) -> np.ndarray:
    """``errors[k, g] = sum_m (ClipFloor(a[g, m]; T, scales[k] peaks[g]) - a[g, m])^2`` in one pass."""
    n_groups, n_elems = acts.shape
    errors = np.zeros((scales.shape[0], n_groups))
    for g in range(n_groups):
        for k in range(scales.shape[0]):
            V = scales[k] * peaks[g]
            inv = T / V
            step = V / T
            total = 0.0
            for m in range(n_elems):
                a = acts[g, m]
                count = np.floor(a * inv + offset)
                count = min(max(count, 0.0), T)
                d = count * step - a
                total += d * d
            errors[k, g] = total
    return errors


def mse_threshold(acts: torch.Tensor, T: int, shift: bool = True, channel_wise: bool = False,
                  candidates: int = 95, step: float = 0.01) -> torch.Tensor:
    """The threshold of the card's grid search (Sec. 2.4; official ``find_threshold_mse``).

    Candidates ``V_i = max(a) (1 - step i)``, ``i = 0..candidates-1``; returns the ``V_i``
    minimising ``||a - ClipFloor(a; T, V_i)||^2`` (the first minimum, as the official strict
    ``<`` scan). The quantiser is the neuron's own (rounding when ``shift``). Zero activations
    have zero error for every candidate and are skipped; the rest is one compiled pass per
    candidate.

    Parameters
    ----------
    acts
        ANN ReLU outputs of one layer ``[N, C, ...]``.
    channel_wise
        One threshold per channel (dimension 1) instead of one per layer.

    Returns
    -------
    torch.Tensor
        0-d (layer-wise) or ``[C]`` (channel-wise), on the device of ``acts``.
    """
    a = acts.detach().float()
    grouped = a.transpose(0, 1).reshape(a.shape[1], -1) if channel_wise else a.reshape(1, -1)  # [G, M]
    peaks = grouped.amax(dim=1).clamp(min=1e-8).double().cpu().numpy()
    scales = 1.0 - step * np.arange(candidates, dtype=np.float64)
    if channel_wise:
        errors = _grid_errors(grouped.double().cpu().numpy(), peaks, scales, int(T), 0.5 if shift else 0.0)
    else:
        nonzero = grouped[grouped > 0].double().cpu().numpy().reshape(1, -1)
        errors = _grid_errors(nonzero, peaks, scales, int(T), 0.5 if shift else 0.0)
    best = errors.argmin(axis=0)
    V = torch.as_tensor(scales[best] * peaks, dtype=torch.float32, device=acts.device)
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

    def subset(self, keep: Sequence[bool]) -> ThresholdSet:
        """The thresholds of the units flagged in ``keep`` (one flag per unit, in order)."""
        pick = [i for i, k in enumerate(keep) if k]
        return ThresholdSet(max=[self.max[i] for i in pick], mse={T: [v[i] for i in pick] for T, v in self.mse.items()})


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
            for T, values in mse_v.items():
                values[i] = _ema(values[i], mse_threshold(a, T, shift, channel_wise, candidates, step), momentum)
    return ThresholdSet(max=list(max_v), mse={T: list(v) for T, v in mse_v.items()})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------

def _synapse_conv(unit: Unit) -> nn.Conv2d:
    return unit.synapse.conv


@torch.no_grad()
def calibrate_in_one_pass(snn: ConvertedSNN, x: torch.Tensor,
                          correct: Callable[[int, Unit, torch.Tensor], None]) -> None:
    """Calibrate every spiking layer in forward order during a single SNN forward pass.

    When layer ``i`` has run, ``correct(i, unit, s)`` receives its time-averaged output
    ``s`` and updates the layer; the layer is then run again on the same input and its
    corrected output goes on to the next layer. This equals the official procedure, which
    reruns the whole SNN for every layer (``emp_bias_corr``), because a layer's output
    depends only on itself and the layers before it; it costs two passes instead of ``L``.
    """
    n = x.shape[0]
    handles = []

    def hook_for(index: int):
        def hook(unit: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            correct(index, unit, _time_mean(output, snn.T, n))
            return unit.forward(*args)  # .forward skips the hooks, so no recursion
        return hook

    for i, unit in enumerate(snn.spiking_units()):
        handles.append(unit.register_forward_hook(hook_for(i)))
    try:
        snn(x)
    finally:
        for h in handles:
            h.remove()


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
    targets = ann_outputs(folded, convertible_like(folded, snn), x)
    corrections: list[torch.Tensor] = []

    def correct(i: int, unit: Unit, s: torch.Tensor) -> None:
        dims = [d for d in range(s.dim()) if d != 1]
        delta = s.mean(dims) - targets[i].mean(dims)
        conv = _synapse_conv(unit)
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels, device=s.device))
        conv.bias.sub_(delta)
        corrections.append(delta)

    calibrate_in_one_pass(snn, x, correct)
    return corrections


@torch.no_grad()
def potential_calibration(snn: ConvertedSNN, folded: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Potential calibration: ``v_init <- T (E_N[r] - E_N[s])`` per neuron, layer by layer.

    The initial membrane potential of every neuron takes the mean (over the batch only)
    rate error times ``T`` (official ``emp_bias_corr``, ``correct_mempot=True``). Modifies
    ``snn`` in place; returns the new initial potentials.
    """
    targets = ann_outputs(folded, convertible_like(folded, snn), x)
    potentials: list[torch.Tensor] = []

    def correct(i: int, unit: Unit, s: torch.Tensor) -> None:
        v0 = snn.T * (targets[i].mean(0) - s.mean(0))
        unit.act.v_init = v0
        potentials.append(v0)

    calibrate_in_one_pass(snn, x, correct)
    return potentials


@dataclass
class WeightCalibrationLog:
    """Weight-calibration loss per layer on all cached samples, before and after optimisation."""

    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)


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
        before, after = _fit_layer_weights(unit, x_hat, res, r, snn.T, iters, lr, batch_size, gen)
        result.before.append(before)
        result.after.append(after)
        log.info("weight calibration, layer %d: loss %.5g -> %.5g", i, before, after)
    return result


def _fit_layer_weights(unit: Unit, x_hat: torch.Tensor, res: torch.Tensor | None, r: torch.Tensor, T: int,
                       iters: int, lr: float, batch_size: int, gen: torch.Generator) -> tuple[float, float]:
    """Optimise one layer's weights; return the loss on all cached samples before and after."""
    conv = _synapse_conv(unit)
    neuron: IFNeuron = unit.act
    V = neuron._broadcast(neuron.threshold.to(x_hat.device), r.dim())
    weight = conv.weight.detach().clone().requires_grad_(True)
    bias = conv.bias.detach() if conv.bias is not None else None

    def loss_on(idx: torch.Tensor | slice) -> torch.Tensor:
        z = F.conv2d(x_hat[idx], weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        if res is not None:
            z = z + res[idx]
        out = clip_floor(z, T, V, neuron.shift, ste=True)
        return (out - r[idx]).pow(2).sum(1).mean()

    with torch.no_grad():
        before = float(loss_on(slice(None)))
    optimizer = torch.optim.Adam([weight], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iters, eta_min=0.0)
    for _ in range(iters):
        idx = torch.randperm(len(x_hat), generator=gen)[:batch_size].to(x_hat.device)  # no repeats in a batch
        loss = loss_on(idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        after = float(loss_on(slice(None)))
        conv.weight.copy_(weight.detach())
    return before, after


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
def correct_predictions(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        batch_size: int = 100) -> torch.Tensor:
    """Boolean ``[N]``: whether ``model`` (ANN logits or SNN summed outputs) classifies each image right."""
    model.eval()
    hits = [model(images[lo:lo + batch_size]).argmax(-1) == labels[lo:lo + batch_size]
            for lo in range(0, len(images), batch_size)]
    return torch.cat(hits).cpu() if hits else torch.zeros(0, dtype=torch.bool)


@torch.no_grad()
def correct_on(model: nn.Module, split: Split, batch_size: int = 100,
               device: str | torch.device = "cpu") -> torch.Tensor:
    """Boolean ``[N]`` on the CPU: whether ``model`` classifies each image of ``split`` right (in order)."""
    model.eval()
    hits = [model(x).argmax(-1) == y for x, y in split.batches(batch_size, device)]
    return torch.cat(hits).cpu() if hits else torch.zeros(0, dtype=torch.bool)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100) -> float:
    """Top-1 accuracy of ``model`` on in-memory images."""
    return float(correct_predictions(model, images, labels, batch_size).float().mean()) if len(labels) else 0.0


def bits(correct: torch.Tensor) -> str:
    """Per-sample correctness as a compact ``'0'``/``'1'`` string (for paired tests in the report)."""
    return "".join("1" if c else "0" for c in correct.tolist())


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


def load_snn_state(folded: nn.Module, state: dict[str, Any], spiking_pool: bool = False) -> ConvertedSNN:
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


# --------------------------------------------------------------------------------------
# The DAG's steps: ANN training, conversion + calibration + evaluation
# --------------------------------------------------------------------------------------

class TimeMajorANN(nn.Module):
    """Adapter for :func:`reprolab.snn.training.fit`: ``[1, N, ...]`` batches in, ``[1, N, C]`` out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(0, 1)).view(x.shape[0], x.shape[1], -1)


class ArraySplit:
    """One split held in memory: images ``[N, C, H, W]`` float32 and labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.images.shape[1:])

    def take(self, idx: np.ndarray, augment: dict[str, Any] | None = None,
             gen: torch.Generator | None = None) -> torch.Tensor:
        """Images at ``idx`` (sorted order), with the experiment's training augmentation if given."""
        from reprolab.snn.data import Augment

        x = torch.from_numpy(self.images[idx])
        return Augment(**augment)(x.unsqueeze(1), gen)[:, 0] if augment else x

    def batches(self, batch_size: int, device: str | torch.device = "cpu"):
        """``(images, labels)`` in order, on ``device``."""
        for lo in range(0, len(self), batch_size):
            yield (torch.from_numpy(self.images[lo:lo + batch_size]).to(device),
                   torch.from_numpy(self.labels[lo:lo + batch_size]).to(device))

    def training_batches(self, exp: dict[str, Any], train: bool, batch_size: int):
        """Batches for :func:`reprolab.snn.training.fit` (augmented and shuffled when ``train``)."""
        from reprolab.snn.data import ArrayBatches, Augment, Preprocess

        aug = Augment(**exp["augment"]) if train and exp.get("augment") else None
        return ArrayBatches(self.images, self.labels, batch_size, Preprocess(repeat_T=1), aug, shuffle=train)


class ImageNetSplit:
    """ImageNet's train or validation split streamed from the prepared folders (:mod:`reprolab.data.imagenet`).

    Evaluation, probes and calibration images get the evaluation transform (resize, centre
    crop) unless calibration asks for augmentation; training batches the training transform.
    """

    def __init__(self, manifest: str | Path, split: str, image_size: int = 224, limit: int | None = None,
                 workers: int = 0) -> None:
        self.manifest, self.split, self.image_size = manifest, ("train" if split == "train" else "val"), image_size
        self.limit, self.workers = limit, workers
        self._plain = self.dataset(augment=False)

    def dataset(self, augment: bool) -> Any:
        from reprolab.data.imagenet import imagenet_dataset

        return imagenet_dataset(self.manifest, self.split, augment, self.image_size, self.limit)

    def __len__(self) -> int:
        return len(self._plain)

    @property
    def shape(self) -> tuple[int, ...]:
        return (3, self.image_size, self.image_size)

    def take(self, idx: np.ndarray, augment: dict[str, Any] | None = None,
             gen: torch.Generator | None = None) -> torch.Tensor:
        """Images at ``idx``; ``augment`` (any non-empty setting) selects the training transform."""
        ds = self.dataset(augment=True) if augment else self._plain
        return torch.stack([ds[int(i)][0] for i in idx])

    def batches(self, batch_size: int, device: str | torch.device = "cpu"):
        loader = torch.utils.data.DataLoader(self._plain, batch_size=batch_size, shuffle=False,
                                             num_workers=self.workers)
        for x, y in loader:
            yield x.to(device), y.to(device)

    def training_batches(self, exp: dict[str, Any], train: bool, batch_size: int):
        from reprolab.data.imagenet import FolderBatches

        return FolderBatches(self.dataset(augment=train), batch_size, shuffle=train, workers=self.workers)


Split = ArraySplit | ImageNetSplit


def ann_spec(exp: dict[str, Any], shape: Sequence[int]) -> dict[str, Any]:
    """What rebuilds the experiment's ANN: model config, input shape ``(C, H, W)`` and classes."""
    if len(shape) != 3 or shape[-1] != shape[-2]:
        raise DataError(f"calib needs square images [N, C, H, W], got images of shape {tuple(shape)}")
    return {"model": exp["model"], "in_channels": int(shape[0]), "input_size": int(shape[-1]),
            "num_classes": NUM_CLASSES.get(exp["dataset"], 10)}


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    return build_ann(spec["model"], spec["in_channels"], spec["num_classes"], spec["input_size"])


def train_ann(exp: dict[str, Any], train: tuple[np.ndarray, np.ndarray] | Split,
              test: tuple[np.ndarray, np.ndarray] | Split, checkpoint_dir: str | Path, device: str,
              progress: bool = True, weights: str | Path | None = None, sync_batchnorm: bool = False
              ) -> tuple[nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """Train the experiment's Conv-BN-ReLU ANN (card Sec. 3), resumable through ``checkpoint_dir``.

    Parameters
    ----------
    exp
        Experiment config (``model``, ``optim``, ``augment``, ``train_seed``, ``dataset``).
    train, test
        ``(images [N, C, H, W], labels)`` or a split (:class:`ArraySplit`, :class:`ImageNetSplit`).
    weights
        torchvision's ImageNet weights file, required when ``model.pretrained`` is ``torchvision``
        (:func:`reprolab.snn.ann.load_torchvision_weights`); training then fine-tunes them.
    sync_batchnorm
        Under data-parallel training on GPUs, BatchNorm statistics over the global batch.

    Returns
    -------
    (net, spec, history)
        The trained network (evaluation mode, on the CPU), its rebuild spec and the
        per-epoch history of :func:`reprolab.snn.training.fit`.
    """
    from reprolab.core.runtime import seed_everything
    from reprolab.snn.training import TrainSpec, fit, loss_step

    train, test = as_split(train), as_split(test)
    spec = ann_spec(exp, train.shape)
    seed = int(exp["train_seed"])
    seed_everything(seed)
    net = build_from_spec(spec)
    if exp["model"].get("pretrained", "none") == "torchvision":
        if weights is None:
            raise ConfigError(f"model.pretrained is torchvision for {exp['model']['arch']}: pass the weights file")
        load_torchvision_weights(net, exp["model"]["arch"], weights)
    optim = exp["optim"]
    train_batches = train.training_batches(exp, True, optim["batch_size"])
    test_batches = test.training_batches(exp, False, 256 if isinstance(test, ArraySplit) else optim["batch_size"])
    tspec = TrainSpec.from_config(optim, seed, paper="calib", model=exp["model"], dataset=exp["dataset"],
                                  augment=exp.get("augment", {}), limit=exp.get("limit", {}))
    history = fit(TimeMajorANN(net), train_batches, test_batches,
                  loss_step(lambda out, y: F.cross_entropy(out.mean(0), y)), tspec, checkpoint_dir, device,
                  progress=progress, sync_batchnorm=sync_batchnorm)
    return net.cpu().eval(), spec, history


def load_split(exp: dict[str, Any], path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split with the experiment's ``limit`` and ``percentile``."""
    return load_images(path, exp["dataset"], exp.get("limit", {}).get(split), exp.get("percentile", 99.0))


def as_split(data: tuple[np.ndarray, np.ndarray] | Split) -> Split:
    return ArraySplit(*data) if isinstance(data, tuple) else data


def open_split(exp: dict[str, Any], path: str | Path, split: str) -> Split:
    """One split of the experiment: in memory, or for ImageNet streamed from the prepared folders.

    ``path`` is the data rule's cache, or for ImageNet the manifest of ``data_imagenet``
    (``split`` ``test`` is ImageNet's validation set).
    """
    if exp["dataset"] == "imagenet":
        loader = exp.get("loader", {})
        return ImageNetSplit(path, split, loader.get("image_size", 224), exp.get("limit", {}).get(split),
                             loader.get("workers", 0))
    return ArraySplit(*load_split(exp, path, split))


def run_training(exp: dict[str, Any], train_path: str, test_path: str, checkpoint_dir: str, device_pref: str,
                 threads: int, out_model: str, out_history: str, weights: str | None = None,
                 resources: dict[str, Any] | None = None, log_path: str | None = None) -> None:
    """The ``calib_train`` rule: train (or fine-tune) the ANN, check BN folding, write weights and history.

    With ``resources`` asking for several processes the ANN trains data-parallel
    (:func:`reprolab.core.distributed.launch_training`).
    """
    launch_training(_train_and_save, (exp, train_path, test_path, checkpoint_dir, out_model, out_history, weights),
                    resources, device_pref, threads, log_path)


def _train_and_save(exp: dict[str, Any], train_path: str, test_path: str, checkpoint_dir: str, out_model: str,
                    out_history: str, weights: str | None, *, device: str, sync_batchnorm: bool) -> None:
    """Body of :func:`run_training` in every process; rank 0 evaluates and writes."""
    from reprolab.core.io import atomic_path, write_json

    train, test = open_split(exp, train_path, "train"), open_split(exp, test_path, "test")
    net, spec, history = train_ann(exp, train, test, checkpoint_dir, device, weights=weights,
                                   sync_batchnorm=sync_batchnorm)
    if not is_main():
        return
    acc = float(correct_on(net.to(device), test, 256, device).float().mean())
    acc_folded = float(correct_on(fold_batch_norm(net), test, 256, device).float().mean())
    net = net.cpu()
    log.info("ANN test accuracy %.4f, after folding BN %.4f", acc, acc_folded)
    with atomic_path(out_model) as tmp:
        torch.save({"state_dict": net.state_dict(), "spec": spec, "experiment": exp}, tmp)
    write_json(out_history, {"dataset": exp["dataset"], "device": device, "train_seed": exp["train_seed"],
                             "processes": world_size(), "test_accuracy": acc, "folded_test_accuracy": acc_folded,
                             "n_test": len(test), "n_train": len(train),
                             "pretrained": exp["model"].get("pretrained", "none"), "epochs": history})


def load_ann(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained ANN written by :func:`run_training` (evaluation mode) and its spec."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    net = build_from_spec(state["spec"])
    net.load_state_dict(state["state_dict"])
    return net.eval(), state["spec"]


@dataclass
class CalibData:
    """Un-augmented (by default) training images for calibration, drawn by the seed.

    ``threshold``: the threshold-scan batches; ``bias``: the one batch of bias and potential
    calibration (a fresh shuffle, as a new pass over the official loader); ``weight``: the
    samples of weight calibration (another shuffle).
    """

    threshold: list[torch.Tensor]
    bias: torch.Tensor
    weight: torch.Tensor


def draw_calibration_data(images: np.ndarray | Split, seed: int, batch_size: int, threshold_batches: int,
                          weight_samples: int, augment: dict[str, Any] | None = None) -> CalibData:
    """Draw the calibration images of one seed from the training set (card Sec. 2.4-2.5).

    ``images``: training images ``[N, C, H, W]`` or a split; ``augment``: the experiment's
    training augmentation (None: un-augmented, the default of ``calibration.augment``).
    """
    split = ArraySplit(images, np.zeros(len(images), np.int64)) if isinstance(images, np.ndarray) else images
    gen = torch.Generator().manual_seed(int(seed))
    n = len(split)

    def take(idx: torch.Tensor) -> torch.Tensor:
        return split.take(np.sort(idx.numpy()), augment, gen)

    perm = torch.randperm(n, generator=gen)
    batches = [take(perm[lo:lo + batch_size]) for lo in range(0, min(n, threshold_batches * batch_size), batch_size)]
    bias = take(torch.randperm(n, generator=gen)[:batch_size])
    weight = take(torch.randperm(n, generator=gen)[:weight_samples])
    return CalibData(batches, bias, weight)


def _apply_step(snn: ConvertedSNN, folded: nn.Module, step: str, data: CalibData, wcfg: dict[str, Any],
                seed: int) -> dict[str, Any]:
    """Apply one calibration step in place; return what it logged."""
    if step == "bias":
        bias_calibration(snn, folded, data.bias)
        return {}
    if step == "potential":
        potential_calibration(snn, folded, data.bias)
        return {}
    if step == "weight":
        wlog = weight_calibration(snn, folded, data.weight, wcfg["iters"], wcfg["lr"], wcfg["batch_size"],
                                  generator=torch.Generator().manual_seed(int(seed)))
        return {"weight_loss_before": wlog.before, "weight_loss_after": wlog.after}
    raise ConfigError(f"papers.calib.pipelines: unknown step {step!r}; use one of {CALIBRATION_STEPS}")


def _threshold_values(values: list[torch.Tensor]) -> list[float | list[float]]:
    return [float(v) if v.dim() == 0 else v.tolist() for v in values]


def _delta_state(snn: ConvertedSNN, folded: nn.Module) -> dict[str, Any]:
    """:func:`snn_state` keeping only the weights that calibration changed."""
    state = snn_state(snn)
    ref = folded.state_dict()
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if k not in ref or not torch.equal(v, ref[k])}
    return state


def calibrate_and_evaluate(folded: nn.Module, settings: dict[str, Any], T: int, thresholds: ThresholdSet,
                           data: CalibData, probe: torch.Tensor, test: Split, seed: int,
                           with_mismatch: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every pipeline of ``settings['pipelines']`` at one ``T``; shared prefixes run once.

    The per-layer mismatch after every step is measured on ``probe`` when ``with_mismatch``
    (the DAG does it at ``focus_T``, the T of the per-layer figures), else recorded as ``None``.

    Returns
    -------
    (results, states)
        Accuracy, per-stage layer mismatch on ``probe``, seconds and logs per pipeline;
        the calibrated SNN of each pipeline (:func:`snn_state`, changed weights only).
    """
    conv = settings["conversion"]
    spiking_pool = conv["pool"] == "spiking"
    cache: dict[tuple[str, ...], tuple[ConvertedSNN, float]] = {}
    out: dict[str, Any] = {"accuracy": {}, "correct": {}, "stages": {}, "seconds": {}, "logs": {}}
    states: dict[str, Any] = {}
    for name, steps in settings["pipelines"].items():
        stages, logs = [], {}
        snn, seconds = None, 0.0
        for k, step in enumerate(steps):
            key = tuple(steps[:k + 1])
            if key not in cache:
                t0 = time.perf_counter()
                if k == 0:
                    snn = convert(folded, thresholds.for_step(step, T), T, conv["shift"], spiking_pool)
                else:
                    snn = copy.deepcopy(snn)
                    logs.update(_apply_step(snn, folded, step, data, settings["calibration"]["weight"], seed))
                cache[key] = (snn, seconds + time.perf_counter() - t0)
            snn, seconds = cache[key]
            stages.append({"step": step, "mismatch": layer_mismatch(snn, folded, probe) if with_mismatch else None})
        correct = correct_on(snn, test, settings["eval_batch_size"], probe.device)
        out["accuracy"][name] = float(correct.float().mean())
        out["correct"][name] = bits(correct)
        out["stages"][name], out["seconds"][name], out["logs"][name] = stages, seconds, logs
        states[name] = _delta_state(snn, folded)
        log.info("T=%d %s: accuracy %.4f (calibration %.1f s)", T, name, out["accuracy"][name], seconds)
    return out, states


def pool_variant_settings(settings: dict[str, Any]) -> dict[str, Any] | None:
    """Settings of the labelled pooling variant: the other pooling, the pipelines of ``pool_variant``.

    ``None`` when ``papers.calib.pool_variant`` names none of the experiment's pipelines. With
    the default linear pooling (the
    official ``nn.AvgPool2d``) the variant makes every pooling layer spike (``AvgPoolConv``).
    """
    names = [n for n in settings.get("pool_variant") or [] if n in settings["pipelines"]]
    if not names:
        return None
    conv = settings["conversion"]
    other = "linear" if conv["pool"] == "spiking" else "spiking"
    return {**settings, "conversion": {**conv, "pool": other},
            "pipelines": {n: settings["pipelines"][n] for n in names}}


def run_conversion(exp: dict[str, Any], settings: dict[str, Any], seed: int, ann_path: str, train_path: str,
                   test_path: str, device_pref: str, threads: int, out_json: str, out_states: str) -> None:
    """The ``calib_convert`` rule: convert, calibrate and evaluate at every ``T`` for one seed.

    Parameters
    ----------
    exp
        Experiment config (dataset, model, limits).
    settings
        ``papers.calib`` at the configured scale: ``conversion``, ``thresholds``,
        ``calibration``, ``pipelines``, ``eval_T``, ``eval_batch_size``, ``probe_size``.
    seed
        Draws the calibration images (the official code's ``seed_all(seed + i)`` runs).

    Every T also runs the pipelines of ``pool_variant`` with the other pooling (same
    calibration images and thresholds of the shared units), stored as ``pool_variant``.
    """
    from reprolab.core.io import atomic_path, write_json
    from reprolab.core.runtime import choose_device, seed_everything, set_threads

    set_threads(threads)
    device = choose_device(device_pref)
    check_settings(settings)
    seed_everything(seed)
    train, test = open_split(exp, train_path, "train"), open_split(exp, test_path, "test")
    net, _ = load_ann(ann_path)
    folded = fold_batch_norm(net).to(device)
    ccfg, tcfg, conv = settings["calibration"], settings["thresholds"], settings["conversion"]
    data = draw_calibration_data(train, seed, ccfg["batch_size"], tcfg["batches"], ccfg["weight"]["samples"],
                                 exp.get("augment") if ccfg["augment"] else None)
    data = CalibData([b.to(device) for b in data.threshold], data.bias.to(device), data.weight.to(device))
    probe = next(test.batches(settings["probe_size"], device))[0]
    Ts = [int(T) for T in settings["eval_T"]]
    spiking_pool = conv["pool"] == "spiking"
    variant = pool_variant_settings(settings)
    # One scan serves both poolings: each unit's thresholds depend only on its own ANN activations.
    scanned = convertible_units(folded, spiking_pool=spiking_pool or variant is not None)
    units = convertible_units(folded, spiking_pool)
    names = {id(m): n for n, m in folded.named_modules()}
    t0 = time.perf_counter()
    all_thresholds = scan_thresholds(folded, scanned, data.threshold, Ts, conv["shift"], conv["channel_wise"],
                                     tcfg["momentum"], tcfg["candidates"], tcfg["step"])
    scan_seconds = time.perf_counter() - t0
    thresholds = all_thresholds.subset([spiking_pool or not u.pooling for u in scanned])
    probe_acts = ann_outputs(folded, units, probe)
    ann_correct = correct_on(net.to(device), test, settings["eval_batch_size"], device)
    result: dict[str, Any] = {
        "seed": seed, "dataset": exp["dataset"], "device": device, "n_test": len(test),
        "num_classes": int(NUM_CLASSES.get(exp["dataset"], 10)), "pool": conv["pool"],
        "ann_accuracy": float(ann_correct.float().mean()), "ann_correct": bits(ann_correct),
        "folded_accuracy": float(correct_on(folded, test, settings["eval_batch_size"], device).float().mean()),
        "layers": [names[id(u)] for u in units], "pooling": [bool(u.pooling) for u in units],
        "thresholds": {"max": _threshold_values(thresholds.max),
                       "mse": {str(T): _threshold_values(v) for T, v in thresholds.mse.items()}},
        "threshold_scan_seconds": scan_seconds, "pipelines": settings["pipelines"], "by_T": {},
        "calibration_images": {"threshold": sum(len(b) for b in data.threshold), "bias": len(data.bias),
                               "weight": len(data.weight)},
    }
    all_states: dict[str, Any] = {}
    for T in Ts:
        res, states = calibrate_and_evaluate(folded, settings, T, thresholds, data, probe, test, seed,
                                             with_mismatch=T == settings["focus_T"])
        if variant is not None:
            other = all_thresholds.subset([variant["conversion"]["pool"] == "spiking" or not u.pooling
                                           for u in scanned])
            var, _ = calibrate_and_evaluate(folded, variant, T, other, data, probe, test, seed, with_mismatch=False)
            res["pool_variant"] = {"pool": variant["conversion"]["pool"], "accuracy": var["accuracy"],
                                   "correct": var["correct"], "seconds": var["seconds"]}
        res["local_error"] = {
            step: dict(zip(("clip", "floor"), map(list, zip(*[
                local_error_split(a, V, T, conv["shift"], conv["channel_wise"])
                for a, V in zip(probe_acts, thresholds.for_step(step, T), strict=True)]))))
            for step in THRESHOLD_STEPS
        }
        result["by_T"][str(T)] = res
        all_states[str(T)] = states
    with atomic_path(out_states) as tmp:
        torch.save({"experiment": exp, "conversion": conv, "seed": seed, "by_T": all_states}, tmp)
    write_json(out_json, result)

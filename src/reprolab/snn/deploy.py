"""Deployment of spiking networks to event-driven form: bias removal, BN folding, leak-free IAF.

The official pipeline of Du et al. (ICLR 2025, code ``train-event-driven``: ``bias_remove``,
``bn_merge_biasless``, ``train_student.py``):

1. set every bias (BN beta included) and every BN running mean to zero;
2. fold ``gamma / sqrt(var + eps)`` of each BN into the weights of the convolution before it;
3. fine-tune with the biases excluded from the optimiser and BN frozen (eval mode);
4. fold again. The result is a bias-free, leak-free network of integrate-and-fire neurons
   (reset by subtraction, several spikes per step, membrane clipped below at ``-1``).

:class:`DeployedNet` is that result as plain weights: it runs time-stepped on frames
(:meth:`DeployedNet.run_frames`) and fully event-driven in :mod:`reprolab.snn.eventsim`.
Average pooling is linear, so it is kept as a fixed scaling (``1 / P**2``) in front of the
next layer and spike counts propagate through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.core.io import atomic_path
from reprolab.snn.mtt import Block, StagedSNN, iaf_steps
from reprolab.snn.timetrans import time_trans, time_trim

# ----------------------------------------------------------------------------- in-place steps on a StagedSNN


@torch.no_grad()
def remove_biases(model: nn.Module) -> int:
    """Zero every bias parameter and BN running mean; exclude the biases from training.

    Returns the number of bias tensors zeroed (official ``bias_remove`` zeroes all parameters
    whose name contains ``bias``, BN beta included).
    """
    n = 0
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
            p.requires_grad_(False)
            n += 1
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.zero_()
    return n


def _bn_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


def _check_bias_free(block: Block, where: str) -> None:
    bn = block.bn
    if bn is None:
        return
    if bn.bias is not None and bool(bn.bias.abs().max() > 0) or bool(bn.running_mean.abs().max() > 0):
        raise ConfigError(f"{where}: batch norm still has a bias or running mean; call remove_biases() before folding")


@torch.no_grad()
def fold_batchnorm(model: StagedSNN) -> None:
    """Fold ``gamma / sqrt(var + eps)`` of every (bias-free) BN into its convolution, in place.

    Afterwards each BN computes the identity: ``gamma = 1``, running mean 0 and running
    variance ``1 - eps`` (so ``sqrt(var + eps) = 1`` exactly; the official code sets 1, a
    factor ``1/sqrt(1 + eps)`` off).
    """
    for g, stage in enumerate(model.stages):
        for i, block in enumerate(stage):
            if block.bn is None:
                continue
            _check_bias_free(block, f"stage {g} block {i}")
            block.synapse.weight.mul_(_bn_scale(block.bn).view(-1, *([1] * (block.synapse.weight.dim() - 1))))
            block.bn.weight.fill_(1.0)
            block.bn.running_var.fill_(1.0 - block.bn.eps)


def prepare_finetune(model: StagedSNN) -> None:
    """Bias removal phase set-up: zero biases, fold BN, freeze BN (official ``train_student.py``)."""
    remove_biases(model)
    fold_batchnorm(model)
    model.bn_frozen = True
    model.train()


# ----------------------------------------------------------------------------- the deployed network


@dataclass
class DeployedLayer:
    """One synaptic layer followed by IAF neurons.

    Attributes
    ----------
    kind
        ``conv``, ``depthwise`` (one input channel per output channel, e.g. average pooling as a
        spiking layer) or ``linear``.
    weight
        ``[C_out, C_in, k, k]``, ``[C, 1, k, k]`` or ``[out, in]`` (float64, BN folded in).
    pool
        Average pooling (kernel = stride = ``pool``) applied to the incoming spikes.
    stride, padding
        Of the convolution.
    in_shape
        Shape of the source population before pooling: ``(C, H, W)`` or ``(F,)``.
    out_shape
        ``(C, H, W)`` or ``(F,)`` of this layer's neurons.
    stage
        Stage index (a TimeTrans precedes the first layer of every stage).
    tick_current
        Optional charge added to every neuron at each clock tick (:func:`reprolab.snn.eventsim.simulate_ticks`):
        per output channel ``[C_out]`` or per neuron ``[out]`` (a bias as a synapse from a clock
        source). ``None`` for the bias-free networks of the MTT pipeline.
    v_init
        Optional membrane potential at the start of each sample, shape ``out_shape``.
    threshold
        This layer's threshold; ``None`` uses the network's. ``inf`` = a readout that never
        fires and only accumulates (read out by potential).
    """

    kind: str
    weight: torch.Tensor
    pool: int
    stride: int
    padding: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stage: int
    tick_current: torch.Tensor | None = None
    v_init: torch.Tensor | None = None
    threshold: float | None = None

    @property
    def pooled_shape(self) -> tuple[int, ...]:
        if len(self.in_shape) == 1:
            return self.in_shape
        c, h, w = self.in_shape
        return (c, h // self.pool, w // self.pool)

    def current(self, spikes: torch.Tensor) -> torch.Tensor:
        """Synaptic current of a batch of source spikes ``[B, *in_shape]`` (pool, flatten, conv / linear)."""
        x = spikes
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        if self.kind in ("conv", "depthwise"):
            groups = x.shape[1] if self.kind == "depthwise" else 1
            return F.conv2d(x, self.weight.to(x.dtype), stride=self.stride, padding=self.padding, groups=groups)
        return F.linear(x.flatten(1), self.weight.to(x.dtype))

    def fanout(self) -> np.ndarray:
        """Synaptic targets of every source neuron (shape ``in_shape``); pooled-away sources have 0."""
        if self.kind == "linear":
            out = np.zeros(self.in_shape, dtype=np.int64)
            if len(self.in_shape) == 1:
                out[:] = self.out_shape[0]
            else:
                _, hp, wp = self.pooled_shape
                out[:, : hp * self.pool, : wp * self.pool] = self.out_shape[0]
            return out
        c_out, h_out, w_out = self.out_shape
        _, hp, wp = self.pooled_shape
        k = self.weight.shape[-1]

        def valid(n_in: int, n_out: int) -> np.ndarray:
            pos = np.arange(n_in)[:, None] + self.padding - np.arange(k)[None, :]
            ok = (pos % self.stride == 0) & (pos // self.stride >= 0) & (pos // self.stride < n_out) & (pos >= 0)
            return np.repeat(ok.sum(1), self.pool)  # per source row / column; the pooled-away rest is 0

        ny, nx = valid(hp, h_out), valid(wp, w_out)
        out = np.zeros(self.in_shape, dtype=np.int64)
        targets_per_position = 1 if self.kind == "depthwise" else c_out
        out[:, : len(ny), : len(nx)] = targets_per_position * ny[:, None] * nx[None, :]
        return out

    def dense_macs(self) -> int:
        """Multiply-accumulates of one dense time step of this layer."""
        return int(np.prod(self.out_shape) * np.prod(self.weight.shape[1:]))


@dataclass
class DeployedNet:
    """A bias-free, leak-free IAF network (BN folded), runnable time-stepped or event-driven.

    The last layer holds the output neurons: the class is the one with most output spikes,
    ties broken by the output membrane potential.

    ``max_spikes``: ``None`` lets a neuron emit ``floor(v / threshold)`` spikes at once (sinabs
    ``IAF``, the MTT pipeline); ``1`` allows one spike per neuron and wave (per clock tick in
    :func:`reprolab.snn.eventsim.simulate_ticks`), the IF neuron of converted networks.
    """

    layers: list[DeployedLayer]
    input_shape: tuple[int, int, int]
    threshold: float = 1.0
    min_v: float | None = -1.0
    input_trans: str = "sum"
    meta: dict[str, Any] = field(default_factory=dict)
    max_spikes: int | None = None

    @property
    def num_stages(self) -> int:
        return max(layer.stage for layer in self.layers) + 1

    @property
    def num_classes(self) -> int:
        return int(self.layers[-1].out_shape[0])

    def dense_macs_per_step(self) -> int:
        return sum(layer.dense_macs() for layer in self.layers)

    @torch.no_grad()
    def run_frames(self, frames: torch.Tensor, config: list[int] | None = None) -> dict[str, Any]:
        """Time-stepped simulation of frames ``[T_0, N, C, H, W]`` (event counts).

        Parameters
        ----------
        config
            Time steps of each stage (default: all stages at ``T_0``).

        Returns
        -------
        dict
            ``counts``: spike counts of every layer summed over time (``[N, *out_shape]``),
            ``input_counts``, ``v_out`` (final output potential), ``current_sum`` (output
            current summed over time, the training readout).
        """
        config = config or [frames.shape[0]] * self.num_stages
        x = frames
        counts, stage, current_sum, v = [], -1, None, None
        for layer in self.layers:
            if layer.stage != stage:
                stage = layer.stage
                T = config[stage]
                x = time_trim(x, T) if (stage == 0 and self.input_trans == "trim") else time_trans(x, T)
            steps, n = x.shape[:2]
            cur = layer.current(x.flatten(0, 1))
            cur = cur.reshape(steps, n, *cur.shape[1:])
            x, v = iaf_steps(cur, self.threshold, self.min_v)
            counts.append(x.sum(0))
            current_sum = cur.sum(0)
        return {"counts": counts, "input_counts": frames.sum(0), "v_out": v, "current_sum": current_sum}

    def save(self, path: str | Path) -> None:
        """Write the network (tensors and plain values only) atomically."""
        state = {
            "layers": [dict(vars(layer)) for layer in self.layers], "input_shape": list(self.input_shape),
            "threshold": self.threshold, "min_v": self.min_v, "input_trans": self.input_trans, "meta": self.meta,
            "max_spikes": self.max_spikes,
        }
        for layer in state["layers"]:
            layer["in_shape"], layer["out_shape"] = list(layer["in_shape"]), list(layer["out_shape"])
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | Path) -> DeployedNet:
        state = torch.load(path, map_location="cpu", weights_only=True)
        layers = [DeployedLayer(**dict(d, in_shape=tuple(d["in_shape"]), out_shape=tuple(d["out_shape"])))
                  for d in state["layers"]]
        return cls(layers, tuple(state["input_shape"]), state["threshold"], state["min_v"], state["input_trans"],
                   state["meta"], state.get("max_spikes"))


def predict(counts: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class with most output spikes, ties broken by membrane potential.

    Returns
    -------
    prediction, tied
        Predicted classes ``[N]`` and whether more than one class had the top spike count.
    """
    counts, v = np.asarray(counts, dtype=np.float64), np.asarray(v, dtype=np.float64)
    top = counts.max(1, keepdims=True)
    candidates = counts == top
    tied = candidates.sum(1) > 1
    return np.where(candidates, v, -np.inf).argmax(1), tied


def synaptic_ops(net: DeployedNet, input_counts: torch.Tensor, counts: list[torch.Tensor]) -> np.ndarray:
    """Synaptic operations (spikes x fan-out) per sample and layer ``[N, n_layers]``."""
    sources = [input_counts] + counts[:-1]
    out = []
    for layer, src in zip(net.layers, sources, strict=True):
        fan = torch.from_numpy(layer.fanout()).to(src.dtype)
        out.append((src * fan).flatten(1).sum(1).cpu().numpy())
    return np.stack(out, 1)


# ----------------------------------------------------------------------------- export / conversion


def conv_out_shape(shape: tuple[int, ...], pool: int, conv: nn.Conv2d) -> tuple[int, int, int]:
    """Output ``(C, H, W)`` of ``conv`` applied to a ``shape`` source after ``pool`` x ``pool`` average pooling."""
    _, h, w = shape
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    return (conv.out_channels, (h // pool + 2 * p - k) // s + 1, (w // pool + 2 * p - k) // s + 1)


def export_staged(model: StagedSNN, input_shape: tuple[int, int, int], meta: dict[str, Any] | None = None) -> DeployedNet:
    """The :class:`DeployedNet` of a bias-free :class:`StagedSNN` (BN folded into the weights).

    Raises
    ------
    ConfigError
        If a batch norm still has a bias or running mean (run :func:`remove_biases` first).
    """
    layers: list[DeployedLayer] = []
    shape: tuple[int, ...] = tuple(input_shape)
    pool_in = model.input_pool
    neuron = next(m for m in model.modules() if hasattr(m, "threshold"))
    for g, stage in enumerate(model.stages):
        for i, block in enumerate(stage):
            _check_bias_free(block, f"stage {g} block {i}")
            weight = block.synapse.weight.detach().double().clone()
            if block.bn is not None:
                weight *= _bn_scale(block.bn).detach().double().view(-1, *([1] * (weight.dim() - 1)))
            pool = block.pool * (pool_in if not layers else 1)
            if isinstance(block.synapse, nn.Conv2d):
                conv = block.synapse
                out = conv_out_shape(shape, pool, conv)
                layers.append(DeployedLayer("conv", weight, pool, conv.stride[0], conv.padding[0], shape, out, g))
            else:
                layers.append(DeployedLayer("linear", weight, pool, 1, 0, shape, (block.synapse.out_features,), g))
            shape = layers[-1].out_shape
    return DeployedNet(layers, tuple(input_shape), float(neuron.threshold), neuron.min_v, model.input_trans,
                       meta or {})


@torch.no_grad()
def convert_vggsnn(model: nn.Module, input_shape: tuple[int, int, int], input_scale: float = 1.0,
                   threshold: float = 1.0, min_v: float | None = -1.0) -> tuple[DeployedNet, dict[str, float]]:
    """Convert a TET-style VGGSNN (conv + BN with bias, LIF with leak) to a :class:`DeployedNet`.

    Not part of the MTT paper: a labelled project conversion without fine-tuning. BN is
    folded completely (``W' = W gamma / sigma``); the folded biases ``(b - mu) gamma / sigma + beta``
    and the leak are dropped (an event-driven IAF network has neither), and the first layer's
    weights are multiplied by ``input_scale`` (TET feeds frames divided by their maximum).

    Returns
    -------
    net, info
        The network and the size of what was dropped (mean |bias| relative to mean |W| row sums).
    """
    layers: list[DeployedLayer] = []
    shape: tuple[int, ...] = tuple(input_shape)
    pool, dropped, scale_ref = 1, [], []
    mods = [m for m in model.modules() if not list(m.children())]
    for m in mods:
        if isinstance(m, nn.Conv2d):
            out = conv_out_shape(shape, pool, m)
            bias = m.bias.double() if m.bias is not None else torch.zeros(m.out_channels, dtype=torch.float64)
            layers.append(DeployedLayer("conv", m.weight.double().clone(), pool, m.stride[0], m.padding[0], shape, out, 0))
            layers[-1].bias = bias  # type: ignore[attr-defined]
            shape, pool = out, 1
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            last = layers[-1]
            scale = (m.weight / torch.sqrt(m.running_var + m.eps)).double()
            last.weight *= scale.view(-1, *([1] * (last.weight.dim() - 1)))
            last.bias = (last.bias - m.running_mean.double()) * scale + m.bias.double()  # type: ignore[attr-defined]
        elif isinstance(m, nn.AvgPool2d):
            pool *= int(m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0])
        elif isinstance(m, nn.Linear):
            bias = m.bias.double() if m.bias is not None else torch.zeros(m.out_features, dtype=torch.float64)
            layers.append(DeployedLayer("linear", m.weight.double().clone(), pool, 1, 0, shape, (m.out_features,), 0))
            layers[-1].bias = bias  # type: ignore[attr-defined]
            shape, pool = (m.out_features,), 1
    if not layers:
        raise ConfigError("convert_vggsnn: the model has no conv or linear layers")
    for layer in layers:
        b = layer.bias  # type: ignore[attr-defined]
        dropped.append(float(b.abs().mean()))
        scale_ref.append(float(layer.weight.flatten(1).abs().sum(1).mean()))
        del layer.bias  # type: ignore[attr-defined]
    layers[0].weight *= input_scale
    info = {"mean_abs_dropped_bias": float(np.mean(dropped)),
            "dropped_bias_over_weight_l1": float(np.mean(np.array(dropped) / np.maximum(scale_ref, 1e-12)))}
    return DeployedNet(layers, tuple(input_shape), threshold, min_v, "sum", {"converted_from": "vggsnn"}), info

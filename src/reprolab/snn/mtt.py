"""Mixed Time-step Training (Du, Wu, Deng, Gu, ICLR 2025, arXiv:2503.17394).

The network is split into stages; every stage runs at its own number of time steps ``T_i``
and stages exchange spike trains through the communication module ``TimeTrans``
(:mod:`reprolab.snn.timetrans`). Each MTT iteration draws ``s`` temporal configurations,
runs each with the shared weights, backpropagates every loss (gradients accumulate, i.e. the
sum of the ``s`` losses, Fig. 1) and takes one optimiser step. The standard direct training
baseline (SDT) always runs every stage at ``max_T``.

Networks here follow the paper's event-driven branch (code ``train-event-driven``): leak-free
integrate-and-fire neurons with reset by subtraction, several spikes per step (``MultiSpike``),
membrane clipped below at ``-1`` (sinabs ``IAFSqueeze``), convolutions without bias followed
by batch norm, a bias-free linear classifier. Stage 0 is the input framing at ``max_T`` frames
(fixed, as the official ``UniformTimeSampler``); stages ``1..G`` draw ``T_i`` uniformly in
``[min_T, max_T]``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.distributed import is_main, launch_training, unwrap
from reprolab.core.errors import ConfigError
from reprolab.core.io import read_jsonl
from reprolab.snn.data import ArrayBatches, Augment, Preprocess
from reprolab.snn.losses import sdt_loss
from reprolab.snn.timetrans import time_trans, time_trim
from reprolab.snn.training import StepFn, TrainSpec, evaluate, fit

log = logging.getLogger("reprolab.snn.mtt")

ARMS = ("sdt", "mtt")
NUM_CLASSES = {"cifar100": 100}


# ----------------------------------------------------------------------------- neuron


class _MultiSpike(torch.autograd.Function):
    """Spike count ``floor(v / theta)`` for ``v >= theta`` (sinabs ``MultiSpike``).

    Backward: sinabs' default ``SingleExponential`` surrogate,
    ``exp(-|v - theta| / (w theta)) / (w theta)`` with ``w = grad_width``.
    """

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: float, grad_width: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.threshold, ctx.grad_width = threshold, grad_width
        return torch.where(v > 0, torch.floor(v / threshold), torch.zeros_like(v))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        width = ctx.threshold * ctx.grad_width
        return grad_output * torch.exp(-(v - ctx.threshold).abs() / width) / width, None, None


OFFICIAL_MIN_V = -1.0
"""Membrane floor of the official event-driven branch (sinabs ``IAFSqueeze(min_v_mem=-1.0)``, card 2.6)."""


def iaf_steps(x: torch.Tensor, threshold: float = 1.0, min_v: float | None = OFFICIAL_MIN_V,
              grad_width: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Leak-free integrate-and-fire over the time axis of ``x`` ``[T, ...]``.

    Per step (sinabs ``IAF``): ``v += x_t``; ``s_t = floor(v / theta)`` if ``v >= theta``;
    ``v -= s_t theta`` (reset by subtraction); ``v = max(v, min_v)``.

    Returns
    -------
    spikes, v
        Spike counts ``[T, ...]`` and the final membrane potential.
    """
    v = torch.zeros_like(x[0])
    out = []
    # unbind, not x[t]: each x[t]'s backward fills a zero tensor of the whole sequence (O(T^2))
    for xt in x.unbind(0):
        v = v + xt
        s = _MultiSpike.apply(v, threshold, grad_width)
        v = v - s * threshold
        if min_v is not None:
            v = F.relu(v - min_v) + min_v
        out.append(s)
    return torch.stack(out), v


class IAF(nn.Module):
    """Multi-step :func:`iaf_steps` as a module (``[T, N, ...]`` in and out)."""

    def __init__(self, threshold: float = 1.0, min_v: float | None = OFFICIAL_MIN_V, grad_width: float = 0.5) -> None:
        super().__init__()
        self.threshold, self.min_v, self.grad_width = threshold, min_v, grad_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return iaf_steps(x, self.threshold, self.min_v, self.grad_width)[0]

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, min_v={self.min_v}"


# ----------------------------------------------------------------------------- network


class Block(nn.Module):
    """Average pooling (optional), flatten (before a linear layer), bias-free synapse, BN, IAF.

    ``neuron=None`` makes the classifier: its per-step output is the network output ``O(t)``.
    """

    def __init__(self, synapse: nn.Module, pool: int = 1, flatten: bool = False, bn: nn.Module | None = None,
                 neuron: nn.Module | None = None) -> None:
        super().__init__()
        self.pool, self.flatten = int(pool), flatten
        self.synapse, self.bn, self.neuron = synapse, bn, neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, n = x.shape[:2]
        y = x.flatten(0, 1)
        if self.pool > 1:
            y = F.avg_pool2d(y, self.pool)
        if self.flatten:
            y = y.flatten(1)
        y = self.synapse(y)
        if self.bn is not None:
            y = self.bn(y)  # statistics over the flattened T*N batch, as in the official code
        y = y.reshape(steps, n, *y.shape[1:])
        return self.neuron(y) if self.neuron is not None else y


class StagedSNN(nn.Module):
    """A spiking network cut into stages, each with its own number of time steps.

    Parameters
    ----------
    stages
        One list of :class:`Block` per stage; a ``TimeTrans`` precedes every stage.
    input_trans
        How the input frames (stage 0, ``max_T`` frames) reach stage 1: ``sum`` re-bins
        (``TimeTrans_Hard``, CIFAR10-DVS model) and ``trim`` keeps the first ``T_1`` frames
        (``TimeTrans_HardTrim``, DVS-Gesture model and time-stepped DVS loaders).
    input_pool
        Average pooling of the input frames (CIFAR10-DVS: 4, 128 -> 32 pixels).
    """

    def __init__(self, stages: Sequence[Sequence[Block]], input_trans: str = "sum", input_pool: int = 1) -> None:
        super().__init__()
        if input_trans not in ("sum", "trim"):
            raise ConfigError(f"model.input_trans must be sum or trim, not {input_trans!r}")
        self.stages = nn.ModuleList(nn.ModuleList(stage) for stage in stages)
        self.input_trans, self.input_pool = input_trans, int(input_pool)
        self.config: list[int] = [1] * len(self.stages)
        self.bn_frozen = False

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def set_config(self, config: Sequence[int]) -> None:
        """Time steps of stages ``1..G`` (the input keeps its own number of frames)."""
        if len(config) != self.num_stages:
            raise ConfigError(f"a temporal configuration needs {self.num_stages} values (one per stage), got {list(config)}")
        if min(config) < 1:
            raise ConfigError(f"time steps must be >= 1, got {list(config)}")
        self.config = [int(t) for t in config]

    def batch_norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> StagedSNN:
        """Like ``nn.Module.train``, but batch norm stays in eval mode while ``bn_frozen``.

        The official bias-removal fine-tune keeps the model in eval mode ("lock_BN") so that
        the zeroed running means and the folded scales stay fixed.
        """
        super().train(mode)
        if self.bn_frozen:
            for bn in self.batch_norms():
                bn.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: input frames ``[T_0, N, C, H, W]``; returns the classifier output ``[T_G, N, K]``."""
        if self.input_pool > 1:
            steps, n = x.shape[:2]
            y = F.avg_pool2d(x.flatten(0, 1), self.input_pool)
            x = y.reshape(steps, n, *y.shape[1:])
        for g, (stage, T) in enumerate(zip(self.stages, self.config, strict=True)):
            x = time_trim(x, T) if (g == 0 and self.input_trans == "trim") else time_trans(x, T)
            for block in stage:
                x = block(x)
        return x


def _layer_kind(spec: dict[str, Any], where: str) -> str:
    kinds = [k for k in ("conv", "linear") if k in spec]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: each layer needs exactly one of 'conv' or 'linear', got {spec}")
    return kinds[0]


def build_staged(spec: dict[str, Any], in_channels: int, num_classes: int, input_size: int) -> StagedSNN:
    """Build the network of a ``model`` config section (``config/schemas/mtt.yaml``).

    ``spec['stages']`` lists the layers of every stage, e.g. ``[[{conv: 16}, {conv: 32, pool: 2}],
    [{linear: 64}]]``; the bias-free classifier is appended to the last stage. Every weight keeps
    PyTorch's default initialisation (the official models set none).
    """
    neuron = spec.get("neuron", {})
    threshold, min_v = float(neuron.get("threshold", 1.0)), neuron.get("min_v", OFFICIAL_MIN_V)
    grad_width = float(neuron.get("grad_width", 0.5))
    input_pool = int(spec.get("input_pool", 1))
    channels, size, flat = in_channels, input_size // input_pool, None
    stages: list[list[Block]] = []
    for g, stage_spec in enumerate(spec["stages"]):
        if not stage_spec:
            raise ConfigError(f"model.stages[{g}] is empty; give every stage at least one layer")
        blocks = []
        for i, layer in enumerate(stage_spec):
            where = f"model.stages[{g}][{i}]"
            kind, pool = _layer_kind(layer, where), int(layer.get("pool", 1))
            if flat is None:
                size //= pool
                if size < 1:
                    raise ConfigError(f"{where}: pooling shrinks the input below one pixel; remove a pool")
            elif pool > 1:
                raise ConfigError(f"{where}: pooling after the flatten is not possible; remove 'pool'")
            if kind == "conv":
                if flat is not None:
                    raise ConfigError(f"{where}: a conv layer cannot follow a linear layer")
                stride, k = int(layer.get("stride", 1)), int(layer.get("kernel", 3))
                synapse: nn.Module = nn.Conv2d(channels, layer["conv"], k, stride=stride, padding=k // 2, bias=False)
                size = (size + 2 * (k // 2) - k) // stride + 1
                channels = layer["conv"]
                blocks.append(Block(synapse, pool, False, nn.BatchNorm2d(channels),
                                    IAF(threshold, min_v, grad_width)))
            else:
                width = channels * size * size if flat is None else flat
                blocks.append(Block(nn.Linear(width, layer["linear"], bias=False), pool, flat is None, None,
                                    IAF(threshold, min_v, grad_width)))
                flat = layer["linear"]
        stages.append(blocks)
    cls_pool = int(spec.get("classifier_pool", 1))
    if flat is None:
        size //= cls_pool
        width = channels * size * size
    else:
        width = flat
    stages[-1].append(Block(nn.Linear(width, num_classes, bias=False), cls_pool, flat is None, None, None))
    # Weights keep PyTorch's default initialisation, as in the official models (train-event-driven/models/
    # snn_speck.py re-initialises nothing); a Kaiming fan-out re-initialisation, as an earlier version did, makes
    # the classifier's weights several times larger than that (issue 12).
    return StagedSNN(stages, spec.get("input_trans", "sum"), input_pool)


# ----------------------------------------------------------------------------- temporal configurations


@dataclass(frozen=True)
class ConfigSampler:
    """Random temporal configurations: ``T_i ~ UniformInt{min_T..max_T}`` per stage.

    ``group`` consecutive stages share one draw (official ``group_block_num``). Draws are a
    pure function of ``(seed, *key)``, so a resumed run draws what an uninterrupted one would.
    """

    num_stages: int
    min_T: int
    max_T: int
    group: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_T <= self.max_T:
            raise ConfigError(f"mtt: need 1 <= min_T <= max_T, got min_T={self.min_T}, max_T={self.max_T}")
        if self.group < 1:
            raise ConfigError(f"mtt.group must be >= 1, got {self.group}")

    def draw(self, *key: int) -> list[int]:
        rng = np.random.default_rng([self.seed, *key])
        draws = rng.integers(self.min_T, self.max_T + 1, size=math.ceil(self.num_stages / self.group))
        return [int(draws[i // self.group]) for i in range(self.num_stages)]


def uniform(model: StagedSNN, T: int) -> list[int]:
    return [int(T)] * model.num_stages


def completed_batches(checkpoint_dir: str | Path, batches_per_epoch: int) -> int:
    """Batches already trained according to the epoch log that :func:`fit` keeps."""
    return len(read_jsonl(Path(checkpoint_dir) / "history.jsonl")) * batches_per_epoch


def sdt_step(T: int) -> StepFn:
    """Standard direct training: every stage at ``T``, ``CE(mean_t O(t), y)``."""

    def step(model: StagedSNN, x: torch.Tensor, y: torch.Tensor,
             backward: Callable[[torch.Tensor], None]) -> tuple[float, torch.Tensor]:
        unwrap(model).set_config(uniform(unwrap(model), T))
        out = model(x)
        loss = sdt_loss(out, y)
        backward(loss)
        return float(loss.detach()), out.detach()

    return step


def mtt_step(sampler: ConfigSampler, sample_num: int, eval_T: int, first_batch: Callable[[], int]) -> StepFn:
    """One MTT iteration (official ``MTT_train_epoch``): ``s`` configurations, ``s`` backward passes.

    Gradients of the ``s`` losses accumulate before the single optimiser step that
    :func:`reprolab.snn.training.fit` takes, i.e. the sum of the losses is backpropagated.
    The logged loss is their mean. The model is left at the uniform ``eval_T``
    configuration so that fit's per-epoch test runs at ``max_T``.

    Parameters
    ----------
    first_batch
        Called once, at the first step: the global index of that batch (non-zero after a resume).
    """
    counter: dict[str, int] = {}

    def step(model: StagedSNN, x: torch.Tensor, y: torch.Tensor,
             backward: Callable[[torch.Tensor], None]) -> tuple[float, torch.Tensor]:
        if "batch" not in counter:
            counter["batch"] = first_batch()
        batch = counter["batch"]
        counter["batch"] += 1
        losses, out = [], None
        net = unwrap(model)  # the network itself under DistributedDataParallel
        for k in range(sample_num):
            net.set_config(sampler.draw(batch, k))
            out = model(x)
            loss = sdt_loss(out, y)
            backward(loss)
            losses.append(float(loss.detach()))
        net.set_config(uniform(net, eval_T))
        return float(np.mean(losses)), out.detach()

    return step


# ----------------------------------------------------------------------------- batch-norm recalibration


@torch.no_grad()
def recalibrate_bn(model: StagedSNN, batches: ArrayBatches, n_batches: int, device: str, seed: int = 0) -> None:
    """Re-estimate batch-norm statistics at the model's current configuration (official ``bn_calibrate``).

    Running statistics are reset, ``momentum = None`` (cumulative average) and ``n_batches``
    training batches are forwarded without gradients; then the model returns to eval mode.
    """
    bns = model.batch_norms()
    if not bns or n_batches <= 0:
        model.eval()
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.eval()
    for bn in bns:
        bn.train()
    for i, (x, _) in enumerate(batches.epoch(seed=seed, epoch=0, device=device)):
        if i >= n_batches:
            break
        model(x)
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    model.eval()


def evaluate_at(model: StagedSNN, config: Sequence[int], test: ArrayBatches, calib: ArrayBatches | None,
                n_calib: int, device: str) -> dict[str, Any]:
    """:func:`reprolab.snn.training.evaluate` at one temporal configuration, after BN recalibration
    when ``calib`` is given (accuracy, per-sample predictions and targets)."""
    model.set_config(config)
    if calib is not None:
        recalibrate_bn(model, calib, n_calib, device)
    return evaluate(model, test, device)


def accuracy_at(model: StagedSNN, config: Sequence[int], test: ArrayBatches, calib: ArrayBatches | None,
                n_calib: int, device: str) -> float:
    """Test accuracy at one temporal configuration, after BN recalibration when ``calib`` is given."""
    return float(evaluate_at(model, config, test, calib, n_calib, device)["accuracy"])


# ----------------------------------------------------------------------------- data


class EventAugment(Augment):
    """:class:`reprolab.snn.data.Augment` plus a vertical flip (official CIFAR10-DVS ``flip(dims=[2])``)."""

    def __init__(self, hflip: bool = False, vflip: bool = False, roll: int = 0) -> None:
        super().__init__(hflip=hflip, roll=roll)
        self.vflip = vflip

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.vflip:
            flip = torch.rand(x.shape[0], generator=gen) < 0.5
            x = torch.where(flip.view(-1, *([1] * (x.dim() - 1))).to(x.device), x.flip(-2), x)
        return super().__call__(x, gen)


def load_split(path: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, T, P, H, W]`` (event counts) and labels of a frame cache."""
    try:
        with np.load(path) as z:
            frames, labels = z["frames"], z["labels"]
    except (OSError, KeyError, ValueError) as err:
        raise ConfigError(f"{path}: not a frame cache ({err}); delete it and rerun the data_frames rule") from err
    if limit is not None:
        frames, labels = frames[:limit], labels[:limit]
    return frames, labels


def make_batches(exp: dict[str, Any], path: str | Path, train: bool, augment: bool | None = None,
                 limit: int | None = None) -> ArrayBatches:
    """Batches of event-count frames (no normalisation: the event-driven network sees single events).

    ``augment`` defaults to ``train``; BN calibration uses shuffled training batches without it.
    """
    frames, labels = load_split(path, limit)
    aug = EventAugment(**exp.get("augment", {})) if (train if augment is None else augment) else None
    return ArrayBatches(frames, labels, exp["optim"]["batch_size"], Preprocess(), aug, shuffle=train)


def num_classes_of(exp: dict[str, Any]) -> int:
    return NUM_CLASSES.get(exp["dataset"], 10)


def build_for(exp: dict[str, Any], sample_shape: Sequence[int]) -> StagedSNN:
    """The experiment's network for frames of shape ``[T, C, H, W]``."""
    return build_staged(exp["model"], in_channels=int(sample_shape[-3]), num_classes=num_classes_of(exp),
                        input_size=int(sample_shape[-1]))


# ----------------------------------------------------------------------------- training


def arm_step(arm: str, exp: dict[str, Any], model: StagedSNN, seed: int, phase: str, checkpoint_dir: str | Path,
             batches_per_epoch: int) -> StepFn:
    """The step of an arm: ``sdt`` at ``max_T``, or ``mtt`` with ``s`` sampled configurations."""
    if arm == "sdt":
        return sdt_step(exp["max_T"])
    if arm == "mtt":
        mtt = exp["mtt"]
        sampler = ConfigSampler(model.num_stages, exp["min_T"], exp["max_T"], mtt.get("group", 1),
                                seed=seed * 10 + (1 if phase == "finetune" else 0))
        return mtt_step(sampler, mtt["sample_num"], exp["max_T"],
                        lambda: completed_batches(checkpoint_dir, batches_per_epoch))
    raise ConfigError(f"papers.mtt.arms: unknown arm {arm!r}; use one of {ARMS}")


def deploy_T(exp: dict[str, Any]) -> tuple[int, int]:
    """``(min_T, T)`` of the bias-removal fine-tune: its input frames and the stage range it samples.

    ``deploy.T`` defaults to ``max_T`` and ``deploy.min_T`` to ``min_T``. The official Gesture
    pipeline fine-tunes at ``T = 40`` with stages drawn in ``1..40`` (SDT: every stage at 40),
    i.e. at a finer resolution than the stage range alone would give when ``T > max_T``.
    """
    dep = exp.get("deploy", {})
    if dep.get("base", "own") not in ("own", "sdt"):
        raise ConfigError(f"deploy.base must be own or sdt, not {dep['base']!r}")
    T, lo = int(dep.get("T", exp["max_T"])), int(dep.get("min_T", exp["min_T"]))
    if not 1 <= lo <= T:
        raise ConfigError(f"deploy: need 1 <= deploy.min_T <= deploy.T, got min_T={lo}, T={T}")
    return lo, T


def deploy_experiment(exp: dict[str, Any]) -> dict[str, Any]:
    """The experiment as the bias-removal fine-tune sees it (frames and stage range of :func:`deploy_T`)."""
    lo, T = deploy_T(exp)
    return dict(exp, min_T=lo, max_T=T)


def train_phase(model: StagedSNN, exp: dict[str, Any], arm: str, seed: int, phase: str, optim: dict[str, Any],
                train_path: str | Path, test_path: str | Path, checkpoint_dir: str | Path, device: str,
                init: str = "", sync_batchnorm: bool = False) -> list[dict[str, Any]]:
    """Train ``model`` (base training or bias-removal fine-tune) with the arm's method; resumable.

    ``init`` identifies the starting weights (e.g. the checksum of the base model) so that a
    checkpoint of a fine-tune that started from other weights is not resumed.
    """
    limit = exp.get("limit", {})
    train = make_batches(exp, train_path, train=True, limit=limit.get("train"))
    test = make_batches(exp, test_path, train=False, limit=limit.get("test"))
    train.batch_size = test.batch_size = optim["batch_size"]
    model.set_config(uniform(model, exp["max_T"]))
    spec = TrainSpec.from_config(optim, seed, paper="mtt", arm=arm, phase=phase, model=exp["model"],
                                 min_T=exp["min_T"], max_T=exp["max_T"], mtt=exp.get("mtt"), dataset=exp["dataset"],
                                 frames=exp.get("frames"), augment=exp.get("augment"), limit=limit, init=init)
    step = arm_step(arm, exp, model, seed, phase, checkpoint_dir, len(train))
    history = fit(model, train, test, step, spec, checkpoint_dir, device, sync_batchnorm=sync_batchnorm)
    model.set_config(uniform(model, exp["max_T"]))
    return history


def save_model(path: str | Path, model: StagedSNN, exp: dict[str, Any], meta: dict[str, Any]) -> None:
    """A ``state_dict`` plus what is needed to rebuild the network."""
    from reprolab.core.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "experiment": exp, **meta}, tmp)


def load_model(path: str | Path) -> tuple[StagedSNN, dict[str, Any]]:
    """Rebuild a network written by :func:`save_model`; returns it and the stored metadata."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = build_for(state["experiment"], state["input_shape"])
    model.load_state_dict(state["state_dict"])
    model.bn_frozen = bool(state.get("bn_frozen", False))
    return model, state


# ----------------------------------------------------------------------------- rule entry points


def _setup(threads: int, device_pref: str) -> str:
    from reprolab.core.runtime import choose_device, set_threads

    set_threads(threads)
    return choose_device(device_pref)


def run_train_base(exp: dict[str, Any], arm: str, seed: int, train_path: str, test_path: str, checkpoint_dir: str,
                   device_pref: str, threads: int, out_model: str, out_history: str,
                   resources: dict[str, Any] | None = None, log_path: str | None = None) -> None:
    """The ``mtt_train`` rule: base training of one arm and seed (SDT at ``max_T`` or MTT), data-parallel
    when ``resources`` ask for several processes (:func:`reprolab.core.distributed.launch_training`)."""
    launch_training(_train_base, (exp, arm, seed, train_path, test_path, checkpoint_dir, out_model, out_history),
                    resources, device_pref, threads, log_path)


def _train_base(exp: dict[str, Any], arm: str, seed: int, train_path: str, test_path: str, checkpoint_dir: str,
                out_model: str, out_history: str, *, device: str, sync_batchnorm: bool) -> None:
    from reprolab.core.io import write_json
    from reprolab.core.runtime import seed_everything

    limit = exp.get("limit", {})
    shape = load_split(test_path, 1)[0].shape[1:]
    seed_everything(seed)
    model = build_for(exp, shape)
    history = train_phase(model, exp, arm, seed, "base", exp["optim"], train_path, test_path, checkpoint_dir, device,
                          sync_batchnorm=sync_batchnorm)
    if not is_main():
        return
    save_model(out_model, model.cpu(), exp, {"arm": arm, "seed": seed, "phase": "base", "input_shape": list(shape)})
    write_json(out_history, {"arm": arm, "seed": seed, "phase": "base", "max_T": exp["max_T"], "device": device,
                             "limit": limit, "epochs": history})


def run_finetune(exp: dict[str, Any], arm: str, seed: int, base_path: str, train_path: str, test_path: str,
                 checkpoint_dir: str, device_pref: str, threads: int, out_deployed: str, out_history: str,
                 train_deploy_path: str | None = None, test_deploy_path: str | None = None,
                 resources: dict[str, Any] | None = None, log_path: str | None = None) -> None:
    """The ``mtt_deploy`` rule: bias removal, BN folding, fine-tune with the arm's method, export.

    The fine-tune uses the same method as the arm (official ``train_student.py --phase
    bias_removal`` with or without ``--MTT``) and starts from ``base_path``: the arm's own base
    network, or SDT's for every arm when ``deploy.base`` is ``sdt`` (the official readme trains
    one SDT base network and fine-tunes it with MTT or SDT). The result is a bias-free IAF network. BN is
    recalibrated (MTT) on ``train_path`` frames at ``max_T``; the fine-tune itself runs on
    ``*_deploy_path`` frames at ``deploy.T`` (default ``max_T``: the same frames). With
    ``resources`` asking for several processes the fine-tune is data-parallel.
    """
    launch_training(_finetune, (exp, arm, seed, base_path, train_path, test_path, checkpoint_dir, out_deployed,
                                out_history, train_deploy_path, test_deploy_path), resources, device_pref, threads,
                    log_path)


def _finetune(exp: dict[str, Any], arm: str, seed: int, base_path: str, train_path: str, test_path: str,
              checkpoint_dir: str, out_deployed: str, out_history: str, train_deploy_path: str | None,
              test_deploy_path: str | None, *, device: str, sync_batchnorm: bool) -> None:
    from reprolab.core.io import write_json
    from reprolab.core.runtime import seed_everything
    from reprolab.report.provenance import md5_of
    from reprolab.snn.deploy import export_staged, prepare_finetune

    model, state = load_model(base_path)
    limit = exp.get("limit", {})
    test = make_batches(exp, test_path, train=False, limit=limit.get("test"))
    model.to(device)
    model.set_config(uniform(model, exp["max_T"]))
    base_arm = state["arm"]  # the arm's own base, or SDT's when deploy.base is sdt (official readme)
    recalibrated = base_arm == "mtt" and exp["min_T"] != exp["max_T"]
    if recalibrated:
        # MTT's running statistics mix every T; re-estimate them at the deployment configuration
        # before they are folded (card 2.5: recalibrate whenever max_T != min_T).
        calib = make_batches(exp, train_path, train=True, augment=False, limit=limit.get("train"))
        recalibrate_bn(model, calib, exp["bn_calibration_batches"], device)
    prepare_finetune(model)
    before = float(evaluate(model, test, device)["accuracy"])
    log.info("%s seed %d: accuracy right after bias removal and BN folding: %.3f", arm, seed, before)
    seed_everything(seed + 1)
    dep_min, dep_T = deploy_T(exp)
    history = train_phase(model, deploy_experiment(exp), arm, seed, "finetune", exp["finetune"],
                          train_deploy_path or train_path, test_deploy_path or test_path, checkpoint_dir, device,
                          init=md5_of(base_path), sync_batchnorm=sync_batchnorm)
    if not is_main():
        return
    net = export_staged(model.cpu(), tuple(state["input_shape"][1:]),
                        {"arm": arm, "seed": seed, "dataset": exp["dataset"], "max_T": exp["max_T"], "deploy_T": dep_T,
                         "base_arm": base_arm})
    net.save(out_deployed)
    write_json(out_history, {"arm": arm, "seed": seed, "phase": "finetune", "max_T": exp["max_T"], "device": device,
                             "deploy_T": dep_T, "deploy_min_T": dep_min, "base_arm": base_arm,
                             "bn_recalibrated_before_folding": recalibrated, "accuracy_after_bias_removal": before,
                             "epochs": history})


def _frame_chunks(exp: dict[str, Any], path: str | Path, limit: int | None) -> tuple[list[torch.Tensor], np.ndarray]:
    frames, labels = load_split(path, limit)
    bs = exp["optim"]["batch_size"]
    chunks = [torch.from_numpy(np.ascontiguousarray(frames[i:i + bs])).float().transpose(0, 1)
              for i in range(0, len(frames), bs)]
    return chunks, labels


def deployed_accuracy(net: Any, chunks: list[torch.Tensor], labels: np.ndarray, config: list[int] | None,
                      with_synops: bool = False) -> dict[str, Any]:
    """Accuracy of a deployed network run time-stepped (output spike counts, ties by potential)."""
    from reprolab.snn.deploy import predict, synaptic_ops

    preds, sum_preds, tied, ops = [], [], [], []
    for x in chunks:
        out = net.run_frames(x, config)
        p, t = predict(out["counts"][-1].numpy(), out["v_out"].numpy())
        preds.append(p)
        tied.append(t)
        sum_preds.append(out["current_sum"].argmax(-1).numpy())
        if with_synops:
            ops.append(synaptic_ops(net, out["input_counts"], out["counts"]))
    pred = np.concatenate(preds)
    result: dict[str, Any] = {
        "accuracy": float((pred == labels).mean()),
        "accuracy_current_readout": float((np.concatenate(sum_preds) == labels).mean()),
        "tie_rate": float(np.concatenate(tied).mean()),
        "predictions": pred.tolist(),
    }
    if with_synops:
        per_layer = np.concatenate(ops)
        result.update(synops_per_sample=float(per_layer.sum(1).mean()), synops_per_layer=per_layer.mean(0).tolist())
    return result


def run_evaluation(exp: dict[str, Any], base_path: str, deployed_path: str, train_path: str, test_path: str,
                   device_pref: str, threads: int, out: str, test_deploy_path: str | None = None) -> None:
    """The ``mtt_evaluate`` rule: temporal flexibility of the base and the deployed network.

    - base network (BN): every uniform T in ``1..max_T`` and ``heterogeneous`` random
      per-stage configurations, each after BN recalibration on ``bn_calibration_batches``
      training batches (official ``bn_calibrate``);
    - deployed network (bias-free IAF, no BN): the same configurations, time-stepped, plus
      its clock-driven accuracy, predictions and synaptic operations per sample at its deployment
      resolution ``deploy.T`` (default ``max_T``; frames of ``test_deploy_path``).
    """
    from reprolab.core.io import write_json
    from reprolab.snn.deploy import DeployedNet

    device = _setup(threads, device_pref)
    model, state = load_model(base_path)
    model.to(device)
    limit = exp.get("limit", {})
    ev = exp["evaluation"]
    test = make_batches(exp, test_path, train=False, limit=limit.get("test"))
    calib = make_batches(exp, train_path, train=True, augment=False, limit=limit.get("train"))
    n_cal = exp["bn_calibration_batches"]
    Ts = list(range(1, exp["max_T"] + 1))
    sampler = ConfigSampler(model.num_stages, exp["min_T"], exp["max_T"], exp.get("mtt", {}).get("group", 1),
                            seed=ev["seed"])
    configs = [sampler.draw(i) for i in range(ev["heterogeneous"])]
    base_runs = {str(T): evaluate_at(model, uniform(model, T), test, calib, n_cal, device) for T in Ts}
    base_uniform = {T: r["accuracy"] for T, r in base_runs.items()}
    log.info("base network, uniform T: %s", base_uniform)
    base_hetero = [accuracy_at(model, c, test, calib, n_cal, device) for c in configs]
    net = DeployedNet.load(deployed_path)
    chunks, labels = _frame_chunks(exp, test_path, limit.get("test"))
    dep_uniform = {str(T): deployed_accuracy(net, chunks, labels, [T] * net.num_stages) for T in Ts}
    dep_hetero = [deployed_accuracy(net, chunks, labels, c)["accuracy"] for c in configs]
    dep_T = deploy_T(exp)[1]
    if dep_T != exp["max_T"]:
        dep_chunks, dep_labels = _frame_chunks(exp, test_deploy_path or test_path, limit.get("test"))
        if not np.array_equal(dep_labels, labels):
            raise ConfigError(f"{test_deploy_path}: labels differ from {test_path}; rebuild the frame caches")
    else:
        dep_chunks = chunks
    at_max = deployed_accuracy(net, dep_chunks, labels, [dep_T] * net.num_stages, with_synops=True)
    log.info("deployed network, uniform T: %s", {T: r["accuracy"] for T, r in dep_uniform.items()})
    write_json(out, {
        "arm": state["arm"], "seed": state["seed"], "dataset": exp["dataset"], "max_T": exp["max_T"],
        "n_test": len(labels), "labels": labels.tolist(), "configs": configs,
        "base": {"uniform": base_uniform, "heterogeneous": base_hetero, "accuracy_max_T": base_uniform[str(exp["max_T"])],
                 "uniform_predictions": {T: r["predictions"] for T, r in base_runs.items()},
                 "bn_calibration_batches": n_cal},
        "deployed": {"uniform": {T: r["accuracy"] for T, r in dep_uniform.items()},
                     "uniform_predictions": {T: r["predictions"] for T, r in dep_uniform.items()},
                     "uniform_current_readout": {T: r["accuracy_current_readout"] for T, r in dep_uniform.items()},
                     "tie_rate": {T: r["tie_rate"] for T, r in dep_uniform.items()},
                     "heterogeneous": dep_hetero, "clock_driven": at_max, "clock_T": dep_T,
                     "dense_macs_per_sample": float(net.dense_macs_per_step() * dep_T)},
    })


def run_eventsim(deployed_path: str, events_path: str, limit: int | None, fine_T: Sequence[int], binning: str,
                 out: str, threads: int = 1) -> None:
    """The ``mtt_eventsim`` rule: the deployed network fully event-driven on raw test events.

    Also, on the same recordings: the network time-stepped at every ``fine_T`` (frames built
    from the events, finer than training; the event-driven run is the limit of ever finer
    steps) and, as a labelled diagnostic, event-driven with the other membrane floor: without
    it when the network has one, with the official ``-1`` (sinabs ``min_v_mem``) when it has none.
    """
    import copy

    from reprolab.core.io import write_json
    from reprolab.data.events import EventSet
    from reprolab.data.frames import events_to_frames
    from reprolab.snn import eventsim
    from reprolab.snn.deploy import DeployedNet

    _setup(threads, "cpu")
    net = DeployedNet.load(deployed_path)
    events = EventSet.load(events_path)
    if limit is not None:
        events = events.subset(limit)
    labels = np.asarray(events.labels)
    fine = {}
    for T in fine_T:
        frames = events_to_frames(events, int(T), binning)
        chunks = [torch.from_numpy(frames[i:i + 50].astype(np.float32)).transpose(0, 1) for i in range(0, len(frames), 50)]
        fine[str(T)] = deployed_accuracy(net, chunks, labels, [int(T)] * net.num_stages)["accuracy"]
    other = copy.deepcopy(net)
    other.min_v = None if net.min_v is not None else OFFICIAL_MIN_V
    other_acc = float((eventsim.simulate(other, events).prediction == labels).mean())
    write_json(out, {**net.meta, **eventsim_summary(net, events), "min_v": net.min_v, "time_stepped_fine_T": fine,
                     "other_floor": {"min_v": other.min_v, "accuracy": other_acc}})


def eventsim_summary(net: Any, events: Any) -> dict[str, Any]:
    """Event-driven accuracy, tie rate, synaptic operations, throughput and conservation checks."""
    from reprolab.snn import eventsim
    from reprolab.snn.deploy import DeployedLayer

    cnet = eventsim.compile_net(net)
    eventsim.warm_up(cnet)
    res = eventsim.simulate(cnet, events)
    labels = np.asarray(events.labels)
    # Conservation on the first recording: every neuron's input charge (linear in its sources'
    # spike counts) equals theta * its spikes + its final potential - the charge added by clipping.
    first = eventsim.simulate(cnet, events.subset(1), keep_state=True)
    counts = eventsim.layer_state(net, cnet, first.state["counts"].astype(np.float64))
    v = eventsim.layer_state(net, cnet, first.state["v"])
    clipped = eventsim.layer_state(net, cnet, first.state["clipped"])
    rec = events.recording(0)
    c, h, w = net.input_shape
    src = np.zeros((c, h, w))
    np.add.at(src, (rec["p"].astype(np.int64), rec["y"].astype(np.int64), rec["x"].astype(np.int64)), 1.0)
    worst = 0.0
    for layer, cnt, pot, clip in zip(net.layers, counts, v, clipped, strict=True):
        layer: DeployedLayer
        charge = layer.current(torch.from_numpy(src).unsqueeze(0)).squeeze(0).numpy()
        worst = max(worst, float(np.abs(charge - (net.threshold * cnt + pot - clip)).max()))
        src = cnt
    return {
        "n_test": len(labels), "accuracy": float((res.prediction == labels).mean()),
        "predictions": res.prediction.tolist(), "targets": labels.tolist(), "tie_rate": float(res.tied.mean()),
        "synops_per_sample": float(res.synops.sum(1).mean()), "synops_per_layer": res.synops.mean(0).tolist(),
        "spikes_per_layer": res.layer_spikes.mean(0).tolist(), "events_per_sample": float(res.events.mean()),
        "waves_per_sample": float(res.waves.mean()), "seconds": res.seconds,
        "synops_per_second": res.synops_per_second,
        "conservation": {"events_in_file": int(events.counts.sum()), "events_processed": int(res.events.sum()),
                         "max_charge_error_first_sample": worst},
        "simulator": "reprolab.snn.eventsim (numba, one core, zero synaptic delay, layer-wise waves)",
    }


def run_tet_eventsim(model_path: str, train_events_path: str, test_events_path: str, limit: int | None, out: str,
                     threads: int = 1) -> None:
    """The ``mtt_tet_eventsim`` rule (beyond the paper): a TET model of the ``tet`` DAG, converted and run event-driven.

    Conversion (project choice, labelled in the report, no fine-tune): BN folded into the
    convolutions, the folded biases and the LIF leak dropped, IAF neurons with reset by
    subtraction, and the first layer scaled by ``1 / median frame maximum`` of the training
    frames (TET divides every frame by its maximum, which events cannot do). Reported: the
    original network's accuracy, the converted network time-stepped on raw count frames at
    TET's T, and the converted network event-driven.
    """
    from reprolab.core.io import write_json
    from reprolab.data.events import EventSet
    from reprolab.data.frames import events_to_frames
    from reprolab.snn.deploy import convert_vggsnn
    from reprolab.snn.models import build_model

    _setup(threads, "cpu")
    state = torch.load(model_path, map_location="cpu", weights_only=False)
    exp = state["experiment"]
    if exp["model"]["arch"] != "vggsnn":
        raise ConfigError(f"{model_path}: only TET's vggsnn can be converted, not {exp['model']['arch']!r}")
    if exp.get("frames", {}).get("resize"):
        raise ConfigError(f"{model_path}: trained on frames resized to {exp['frames']['resize']} px, which events at "
                          "sensor resolution cannot reproduce; leave this run out of papers.mtt.tet_models")
    test = EventSet.load(test_events_path)
    if limit is not None:
        test = test.subset(limit)
    width, height, pols = test.sensor_size
    T, binning = int(exp["T"]), exp.get("frames", {}).get("binning", "count")
    model = build_model(exp["model"], in_channels=pols, num_classes=10, input_size=height)
    model.load_state_dict(state["state_dict"])
    model.eval()
    frames = events_to_frames(test, T, binning)
    normalize = exp.get("frames", {}).get("normalize", "none")
    batches = ArrayBatches(frames, test.labels, 50, Preprocess(normalize=normalize))
    original = float(evaluate(model, batches, "cpu")["accuracy"])
    train_frames = events_to_frames(EventSet.load(train_events_path), T, binning)
    scale = 1.0 / float(np.median(train_frames.max(axis=(2, 3, 4)))) if normalize == "frame_max" else 1.0
    net, info = convert_vggsnn(model, (pols, height, width), input_scale=scale)
    chunks = [torch.from_numpy(frames[i:i + 50].astype(np.float64)).transpose(0, 1) for i in range(0, len(frames), 50)]
    clock = deployed_accuracy(net, chunks, np.asarray(test.labels), [T], with_synops=True)
    summary = eventsim_summary(net, test)
    write_json(out, {
        "arm": state["arm"], "seed": state["seed"], "dataset": exp["dataset"], "T": T, "frames": exp.get("frames", {}),
        "original_accuracy": original, "input_scale": scale, "conversion": info, "clock_driven": clock,
        "event_driven": summary,
    })

"""The training loop shared by every SNN paper: seeded, resumable, mixed precision on GPU, data-parallel.

A checkpoint is written atomically after every epoch to a folder outside the rule's
declared outputs (Snakemake deletes outputs before rerunning a job;
:func:`reprolab.core.loop.run_epochs`). A killed run rerun with the same arguments resumes
from it and ends with the same numbers as an uninterrupted run, because each epoch's batch
order and augmentation depend only on ``(seed, epoch)``. Under
:func:`reprolab.core.distributed.launch` the same loop trains one model in several processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reprolab.core import distributed as dd
from reprolab.core.loop import run_epochs
from reprolab.report.stats import per_sample
from reprolab.snn.data import ArrayBatches

log = logging.getLogger("reprolab.snn")

#: ``step(model, x, y, backward) -> (loss value, outputs [T, N, C])``; calls ``backward(loss)``
#: once per loss it wants to accumulate (MTT calls it once per sampled configuration).
StepFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, Callable[[torch.Tensor], None]],
                  tuple[float, torch.Tensor]]


@dataclass
class TrainSpec:
    """What :func:`fit` needs besides the model and data (``common.yaml#/$defs/optim``)."""

    epochs: int
    lr: float
    batch_size: int
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    seed: int = 0
    amp: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, optim: dict[str, Any], seed: int, **extra: Any) -> TrainSpec:
        """Build from an ``optim`` config section; ``extra`` enters the resume key."""
        return cls(epochs=optim["epochs"], lr=optim["lr"], batch_size=optim["batch_size"],
                   optimizer=optim["name"], weight_decay=optim.get("weight_decay", 0.0),
                   momentum=optim.get("momentum", 0.9), seed=seed, extra=extra)

    def key(self) -> str:
        """Hash identifying the run; a checkpoint with another key is not resumed."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_optimizer(params: Any, spec: TrainSpec) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum) as named by ``spec.optimizer``."""
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    raise ValueError(f"optim.name {spec.optimizer!r} is unknown; use adam, adamw or sgd")


def loss_step(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> StepFn:
    """The plain training step: one forward pass, one loss, one backward."""

    def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             backward: Callable[[torch.Tensor], None]) -> tuple[float, torch.Tensor]:
        outputs = model(x)
        loss = loss_fn(outputs, y)
        backward(loss)
        return float(loss.detach()), outputs.detach()

    return step


def _class_scores(outputs: torch.Tensor) -> torch.Tensor:
    """``[N, C]`` scores: the time average of SNN outputs ``[T, N, C]``, or ANN outputs as they are."""
    return outputs.float().mean(0) if outputs.dim() == 3 else outputs.float()


@torch.no_grad()
def evaluate(model: nn.Module, batches: ArrayBatches, device: str, per_step: bool = False) -> dict[str, Any]:
    """Top-1 accuracy of the time-averaged output (and of each ``O(t)`` alone if ``per_step``).

    Models returning ``[N, C]`` (ANNs) are scored on their output directly.

    Returns
    -------
    dict
        ``accuracy``, ``n``, per-sample ``predictions`` and ``targets`` in the test set's fixed
        order (so reports can pair arms, :func:`reprolab.report.stats.per_sample`) and, with
        ``per_step``, ``per_step_accuracy`` (one value per t).
    """
    model = dd.unwrap(model)
    model.eval()
    indices, preds, targets, step_hits = [], [], [], []
    for idx, x, y in batches.indexed_epoch(seed=0, epoch=0, device=device, shard=True):
        out = model(x).float()
        indices.append(idx)
        preds.append(_class_scores(out).argmax(-1).cpu().numpy())
        targets.append(y.cpu().numpy())
        if per_step and out.dim() == 3:
            step_hits.append((out.argmax(-1) == y.unsqueeze(0)).T.cpu().numpy())  # [N, T]
    if not indices:
        return {"accuracy": 0.0, "n": 0, **per_sample([], [])}
    arrays = [np.concatenate(preds), np.concatenate(targets)] + ([np.concatenate(step_hits)] if step_hits else [])
    pred, target, *hits = dd.gather_by_index(np.concatenate(indices), arrays)
    total = len(target)
    result: dict[str, Any] = {"accuracy": float((pred == target).sum()) / total, "n": total,
                              **per_sample(pred, target)}
    if per_step and hits:
        result["per_step_accuracy"] = hits[0].mean(0).tolist()
    return result


def fit(model: nn.Module, train: ArrayBatches, test: ArrayBatches | None, step: StepFn, spec: TrainSpec,
        checkpoint_dir: str | Path, device: str, progress: bool = True, keep_predictions: bool = False,
        sync_batchnorm: bool = False) -> list[dict[str, Any]]:
    """Train ``model`` for ``spec.epochs`` epochs, resuming from ``checkpoint_dir`` if possible.

    The epochs run in :func:`reprolab.core.loop.run_epochs` (checkpoint after every epoch, resume
    to identical numbers). Inside a data-parallel process group
    (:func:`reprolab.core.distributed.launch`) the model is wrapped in
    ``DistributedDataParallel``, each process takes its share of every global batch of
    ``spec.batch_size`` samples, and losses, accuracies and test predictions are combined over
    the processes; only rank 0 writes.

    Parameters
    ----------
    model
        Network returning ``[T, N, C]`` (or ``[N, C]``) outputs.
    train, test
        Batch sources; ``test`` is evaluated after every epoch (``None`` to skip).
    step
        Training step (see :data:`StepFn`); :func:`loss_step` wraps a plain loss. It receives
        the (possibly DDP-wrapped) model: reach the network's own methods through
        :func:`reprolab.core.distributed.unwrap`.
    spec
        Optimiser, schedule, seed.
    checkpoint_dir
        Folder outside the rule's outputs; holds ``last.pt`` and ``history.jsonl``.
    device
        ``cpu`` or ``cuda`` (chosen once by :func:`reprolab.core.choose_device`).
    progress
        Show a progress bar.
    keep_predictions
        Also store each epoch's per-sample test predictions (``test_predictions``, in the test
        set's order), so that runs can be compared paired on samples at any epoch.
    sync_batchnorm
        With several CUDA processes, BatchNorm statistics over the global batch.

    Returns
    -------
    list of dict
        One record per epoch: loss, train and test accuracy, learning rate, training time
        (``seconds``, evaluation excluded), throughput.
    """
    model.to(device)
    net = dd.wrap(model, device, sync_batchnorm)
    optimizer = make_optimizer(net.parameters(), spec)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.epochs, eta_min=0.0)
    use_amp = spec.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def backward(loss: torch.Tensor) -> None:
        scaler.scale(loss).backward()

    def epoch_fn(epoch: int) -> dict[str, Any]:
        net.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
        bar = tqdm(train.epoch(spec.seed, epoch, device, shard=True), total=len(train), desc=f"epoch {epoch + 1}/{spec.epochs}",
                   disable=not (progress and dd.is_main()), file=sys.stderr, mininterval=5.0)
        for x, y in bar:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                loss_value, outputs = step(net, x, y, backward)
            scaler.step(optimizer)
            scaler.update()
            sums["loss"] += loss_value * len(y)
            sums["correct"] += int((_class_scores(outputs).argmax(-1) == y).sum())
            sums["seen"] += len(y)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        seconds = time.perf_counter() - t0
        sums = dd.reduce_sums(sums)
        record: dict[str, Any] = {"train_loss": sums["loss"] / sums["seen"],
                                  "train_accuracy": sums["correct"] / sums["seen"], "lr": lr, "seconds": seconds,
                                  "samples_per_second": sums["seen"] / seconds}
        if test is not None:
            tested = evaluate(model, test, device)
            record["test_accuracy"] = tested["accuracy"]
            if keep_predictions:
                record["test_predictions"] = tested["predictions"]
        return record

    return run_epochs(epoch_fn, {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler},
                      spec.epochs, spec.seed, spec.key(), checkpoint_dir, progress=False)

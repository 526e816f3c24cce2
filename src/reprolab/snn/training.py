"""The training loop shared by every SNN paper: seeded, resumable, mixed precision on GPU.

A checkpoint is written atomically after every epoch to a folder outside the rule's
declared outputs (Snakemake deletes outputs before rerunning a job). A killed run rerun
with the same arguments resumes from it and ends with the same numbers as an
uninterrupted run, because each epoch's batch order and augmentation depend only on
``(seed, epoch)``.
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

import torch
from torch import nn
from tqdm import tqdm

from reprolab.core.io import append_jsonl, atomic_path
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
    model.eval()
    preds, targets, step_correct = [], [], None
    for x, y in batches.epoch(seed=0, epoch=0, device=device):
        out = model(x).float()
        preds.append(_class_scores(out).argmax(-1).cpu())
        targets.append(y.cpu())
        if per_step and out.dim() == 3:
            hits = (out.argmax(-1) == y.unsqueeze(0)).sum(1)
            step_correct = hits if step_correct is None else step_correct + hits
    pred, target = (torch.cat(preds), torch.cat(targets)) if preds else (torch.zeros(0), torch.zeros(0))
    total = len(target)
    result: dict[str, Any] = {"accuracy": float((pred == target).sum()) / max(total, 1), "n": total,
                              **per_sample(pred.numpy(), target.numpy())}
    if per_step and step_correct is not None:
        result["per_step_accuracy"] = (step_correct.float() / total).tolist()
    return result


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def fit(model: nn.Module, train: ArrayBatches, test: ArrayBatches | None, step: StepFn, spec: TrainSpec,
        checkpoint_dir: str | Path, device: str, progress: bool = True) -> list[dict[str, Any]]:
    """Train ``model`` for ``spec.epochs`` epochs, resuming from ``checkpoint_dir`` if possible.

    Parameters
    ----------
    model
        Network returning ``[T, N, C]`` (or ``[N, C]``) outputs.
    train, test
        Batch sources; ``test`` is evaluated after every epoch (``None`` to skip).
    step
        Training step (see :data:`StepFn`); :func:`loss_step` wraps a plain loss.
    spec
        Optimiser, schedule, seed.
    checkpoint_dir
        Folder outside the rule's outputs; holds ``last.pt`` and ``history.jsonl``.
    device
        ``cpu`` or ``cuda`` (chosen once by :func:`reprolab.core.choose_device`).

    Returns
    -------
    list of dict
        One record per epoch: loss, train and test accuracy, learning rate, time, throughput.
    """
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, history_path = ckpt_dir / "last.pt", ckpt_dir / "history.jsonl"
    model.to(device)
    optimizer = make_optimizer(model.parameters(), spec)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.epochs, eta_min=0.0)
    use_amp = spec.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        if state.get("key") == spec.key():
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            history, start_epoch = state["history"], state["epoch"] + 1
            log.info("resuming from %s after epoch %d", ckpt_path, state["epoch"])
        else:
            log.warning("ignoring %s: it belongs to another configuration", ckpt_path)
    # Rewrite the metrics log from the checkpoint, dropping lines of an epoch that did not finish.
    with atomic_path(history_path) as tmp:
        tmp.write_text("".join(json.dumps(h) + "\n" for h in history))

    def backward(loss: torch.Tensor) -> None:
        scaler.scale(loss).backward()

    for epoch in range(start_epoch, spec.epochs):
        model.train()
        t0 = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(train.epoch(spec.seed, epoch, device), total=len(train), desc=f"epoch {epoch + 1}/{spec.epochs}",
                   disable=not progress, file=sys.stderr, mininterval=5.0)
        for x, y in bar:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                loss_value, outputs = step(model, x, y, backward)
            scaler.step(optimizer)
            scaler.update()
            logits = _class_scores(outputs)
            loss_sum += loss_value * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        seconds = time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen, "lr": lr,
            "seconds": seconds, "samples_per_second": seen / seconds,
        }
        if test is not None:
            record["test_accuracy"] = evaluate(model, test, device)["accuracy"]
        history.append(record)
        append_jsonl(history_path, record)
        log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in record.items() if isinstance(v, float)})
        _save_checkpoint(ckpt_path, {
            "key": spec.key(), "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "history": history,
        })
    return history

"""Functions run inside spawned data-parallel processes by tests/medical/test_planes_distributed.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from reprolab.core import distributed as dd
from reprolab.medical import planes


def group_norm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d replaced by a one-group GroupNorm (per-sample statistics).

    With per-sample normalisation a batch split over processes gives the same gradients as the
    whole batch in one process, so the sharding, loss weighting and reductions of the training
    loops can be checked exactly; BatchNorm (per-process statistics on CPU) can only agree to a
    tolerance.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.GroupNorm(1, child.num_features))
        else:
            group_norm(child)
    return module


def _per_sample_norm_models() -> None:
    pretext, segmentation = planes.pretext_model, planes.segmentation_model
    planes.pretext_model = lambda cfg: group_norm(pretext(cfg))
    planes.segmentation_model = lambda cfg, n: group_norm(segmentation(cfg, n))


def _weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _fail_on_call(name: str, call: int) -> None:
    """Make ``planes.<name>`` raise on its ``call``-th call in this process (a killed job)."""
    original, calls = getattr(planes, name), {"n": 0}

    def dies(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    setattr(planes, name, dies)


def pretrain_exact(cfg: Mapping[str, Any], data_path: str, checkpoint_dir: str, fail_at_validation: int = 0) -> dict:
    """Pretrain the multitask arm with per-sample normalisation; weights, history, world size."""
    _per_sample_norm_models()
    if fail_at_validation:
        _fail_on_call("_pretext_eval_losses", fail_at_validation)
    model, history, best = planes.pretrain("multitask", cfg, data_path, 1, "cpu", checkpoint_dir)
    return {"weights": _weights(model), "history": history, "best_epoch": best.epoch, "world": dd.world_size()}


def finetune_exact(cfg: Mapping[str, Any], data_path: str, checkpoint_dir: str) -> dict:
    """One scratch fine-tuning run (seed 1, first budget) with per-sample normalisation."""
    _per_sample_norm_models()
    run = planes.finetune("scratch", cfg, planes.load_npz(data_path), cfg["finetune"]["budgets"][0], 1, None, "cpu",
                          checkpoint_dir)
    return {"run": run, "world": dd.world_size()}

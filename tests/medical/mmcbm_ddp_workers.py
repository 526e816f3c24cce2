"""Functions run inside spawned data-parallel processes by tests/medical/test_mmcbm_distributed.py."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.ops import StochasticDepth

from reprolab.core import distributed as dd
from reprolab.medical import mmcbm_pipeline


def per_sample(module: nn.Module) -> nn.Module:
    """``module`` with BatchNorm2d -> one-group GroupNorm and stochastic depth / dropout off.

    Every sample's output then depends on that sample only (and on no random draw), so a
    batch split over processes gives the gradients of the whole batch in one process.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.GroupNorm(1, child.num_features))
        elif isinstance(child, StochasticDepth | nn.Dropout):
            child.p = 0.0
        else:
            per_sample(child)
    return module


def train_exact(args: tuple, fail_at_epoch: int = 0) -> dict[str, Any]:
    """:func:`train_backbone` with a per-sample backbone in this process; rank 0's weights and history."""
    build = mmcbm_pipeline.build_backbone
    mmcbm_pipeline.build_backbone = lambda settings, weights=None: per_sample(build(settings, weights))
    if fail_at_epoch:
        predict, calls = mmcbm_pipeline.predict_backbone, {"n": 0}

        def dies(*a: Any, **k: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == fail_at_epoch:
                raise RuntimeError("killed")
            return predict(*a, **k)

        mmcbm_pipeline.predict_backbone = dies
    mmcbm_pipeline._backbone_job(*args, device="cpu", sync_batchnorm=False)
    out_model, out_history = args[6], args[7]
    weights = {k: v.numpy() for k, v in torch.load(out_model).items()} if dd.is_main() else {}
    return {"weights": weights, "history": out_history, "world": dd.world_size()}

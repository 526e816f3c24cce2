"""Functions run inside spawned data-parallel processes by tests/core/test_distributed.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from reprolab.core import distributed as dd
from reprolab.core.loop import run_epochs, run_key

N, BATCH, FEATURES = 64, 16, 5


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, FEATURES, generator=g)
    return x, x @ torch.arange(1.0, FEATURES + 1) + 0.1 * torch.randn(N, generator=g)


def train_linear(epochs: int, checkpoint_dir: str, fail_at_epoch: int | None = None) -> dict:
    """SGD with momentum on a linear model, global batch BATCH split over the processes."""
    torch.manual_seed(1)
    x, y = _data()
    net = dd.wrap(nn.Linear(FEATURES, 1), "cpu")
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
    local = BATCH // dd.world_size()

    def epoch_fn(epoch: int) -> dict:
        if fail_at_epoch is not None and epoch == fail_at_epoch:
            raise RuntimeError("killed")
        order = dd.shard(N, seed=7, epoch=epoch, shuffle=True)
        total = 0.0
        for lo in range(0, len(order), local):
            idx = torch.from_numpy(order[lo:lo + local])
            loss = ((net(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        return dd.reduce_sums({"loss_sum": total})

    history = run_epochs(epoch_fn, {"net": net, "opt": opt}, epochs, seed=3, key=run_key({"t": 1}),
                         checkpoint_dir=checkpoint_dir, progress=False)
    weight = dd.unwrap(net).weight.detach().numpy().copy()
    return {"weight": weight, "history": history, "world": dd.world_size()}


def gather_and_reduce(n: int) -> dict:
    """Each rank 'predicts' its shard; rank order must come back as sample order."""
    idx = dd.shard(n, seed=0, epoch=0, shuffle=True)
    preds = idx * 10
    (ordered,) = dd.gather_by_index(idx, [preds])
    sums = dd.reduce_sums({"one": 1.0, "rank": float(dd.rank())})
    return {"ordered": ordered, "sums": sums, "main": dd.is_main()}


def write_marker(path: str) -> int:
    if dd.is_main():
        Path(path).write_text(str(dd.world_size()))
    dd.barrier()
    return int(np.int64(dd.world_size()))


def shares_and_buffers(batch: int) -> dict:
    """Each rank's share of a global batch, its loss weight, and a BatchNorm buffer after sync_buffers."""
    part = dd.local_share(np.arange(batch))
    bn = nn.BatchNorm1d(2)
    bn.running_mean.fill_(float(dd.rank() + 1))  # rank 0: 1, rank 1: 2
    dd.sync_buffers(bn)
    sums = dd.reduce_sums({"mean": float(bn.running_mean[0]), "weight": dd.share_weight(len(part), batch),
                           "n": float(len(part))})
    parts = dd.gather_by_index(np.array([dd.rank()]), [np.array([part.tolist() + [-1] * (batch - len(part))])])[0]
    return {"sums": sums, "parts": parts}


def split_error(batch: int) -> str:
    """The error of splitting a global batch smaller than the number of processes ('' if none)."""
    try:
        dd.local_share(np.arange(batch))
    except ValueError as err:
        return str(err)
    return ""

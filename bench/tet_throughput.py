"""Training throughput of the demo VGGSNN at T=10: reprolab's multi-step network vs a plain
per-time-step PyTorch loop of the same network (same weights, same maths).

The plain loop is how SNN training code is often written: for each time step, run every
layer on that step's input and update each LIF state in Python. reprolab instead runs
each convolution and batch norm once over the flattened ``T * N`` batch (SpikingJelly
multi-step layers) and loops over time only inside the neurons.

Usage::

    python bench/tet_throughput.py [--threads 1] [--batch 25] [--steps 20] [--out bench.json]
    python bench/tet_throughput.py --network paper --device cuda --batch 128

Prints samples per second of a full training step (forward, backward, Adam) for both.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.snn.losses import tet_loss
from reprolab.snn.models import VGGSNN
from reprolab.snn.neurons import _TriangleSpike

T = 10
DEMO = {"channels": [16, 32, 64], "pool": [True, True, True], "size": 34}
PAPER = {"channels": [64, 128, 256, 256, 512, 512, 512, 512],
         "pool": [False, True, False, True, False, True, False, True], "size": 48}


class PlainLoopVGG(nn.Module):
    """The same network written as a per-time-step loop (shares parameters with ``ref``).

    Batch norm here normalises each step's batch separately, as per-step code does; the
    arithmetic per sample is otherwise identical.
    """

    def __init__(self, ref: VGGSNN, pool: list[bool]) -> None:
        super().__init__()
        self.pool = pool
        mods = list(ref.features)
        self.convs = [m for m in mods if isinstance(m, nn.Conv2d)]
        self.bns = [m for m in mods if isinstance(m, nn.BatchNorm2d)]
        self.fc = ref.classifier[-1]
        self.params = nn.ModuleList(self.convs + self.bns + [self.fc])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [None] * len(self.convs)
        outs = []
        for t in range(x.shape[0]):
            h = x[t]
            for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
                # the plain nn forwards (per step), bypassing SpikingJelly's multi-step wrappers
                u = nn.BatchNorm2d.forward(bn, nn.Conv2d.forward(conv, h))
                mems[i] = u if mems[i] is None else 0.5 * mems[i] + u
                s = _TriangleSpike.apply(mems[i] - 1.0, 1.0)
                mems[i] = mems[i] * (1 - s)
                h = F.avg_pool2d(s, 2) if self.pool[i] else s
            outs.append(nn.Linear.forward(self.fc, h.flatten(1)))
        return torch.stack(outs)


def samples_per_second(model: nn.Module, batch: int, size: int, steps: int, device: str) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(T, batch, 2, size, size, device=device) < 0.05).float()
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        opt.zero_grad()
        tet_loss(model(x), y).backward()
        opt.step()

    for _ in range(2):  # warm-up
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=None)
    parser.add_argument("--network", choices=["demo", "paper"], default="demo",
                        help="demo VGGSNN (34x34) or the paper's CIFAR10-DVS VGGSNN (48x48)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = DEMO if args.network == "demo" else PAPER
    ours = VGGSNN(2, 10, net["size"], net["channels"], net["pool"]).to(args.device)
    plain = PlainLoopVGG(ours, net["pool"]).to(args.device)
    result = {
        "T": T, "batch": args.batch, "threads": args.threads, "device": args.device,
        "network": f"VGGSNN {net['channels']}, {net['size']}x{net['size']}",
        "reprolab_samples_per_s": samples_per_second(ours, args.batch, net["size"], args.steps, args.device),
        "plain_loop_samples_per_s": samples_per_second(plain, args.batch, net["size"], args.steps, args.device),
    }
    result["speedup"] = result["reprolab_samples_per_s"] / result["plain_loop_samples_per_s"]
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()

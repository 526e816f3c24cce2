"""Data-parallel training throughput: 1 process vs N processes on the demo TET network.

Trains the demo VGGSNN (T=10, 2 x 34 x 34 frames, TET loss) through reprolab's own training
loop (``reprolab.snn.training.fit``) with the same global batch, once in one process and
once in ``--processes`` processes started by ``reprolab.core.distributed.launch`` (gloo on
CPUs, one process per GPU with NCCL on ``--device cuda``), and reports training samples per
second of the last epoch (all processes together) and the scaling efficiency
``(samples/s with N) / (N x samples/s with 1)``.

Usage::

    python bench/ddp_throughput.py [--processes 2] [--samples 400] [--batch 40] [--epochs 2] [--out r.json]
    python bench/ddp_throughput.py --device cuda --processes 4 --network paper --batch 128

The frames are random (throughput does not depend on their content).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from typing import Any

import numpy as np
import torch

from reprolab.core import distributed as dd

T = 10
NETWORKS = {"demo": {"channels": [16, 32, 64], "pool": [True, True, True], "size": 34},
            "paper": {"channels": [64, 128, 256, 256, 512, 512, 512, 512],
                      "pool": [False, True, False, True, False, True, False, True], "size": 48}}


def train(network: str, samples: int, batch: int, epochs: int, device: str, threads: int, ckpt: str) -> dict[str, Any]:
    """One training run in this process (or in each process of a group); the last epoch's record."""
    from reprolab.snn.data import ArrayBatches, Preprocess
    from reprolab.snn.losses import tet_loss
    from reprolab.snn.models import VGGSNN
    from reprolab.snn.training import TrainSpec, fit, loss_step

    torch.set_num_threads(threads)
    device = dd.local_device(device)
    net = NETWORKS[network]
    rng = np.random.default_rng(0)
    frames = rng.random((samples, T, 2, net["size"], net["size"]), dtype=np.float32)
    labels = rng.integers(0, 10, samples)
    data = ArrayBatches(frames, labels, batch, Preprocess(), shuffle=True)
    torch.manual_seed(0)
    model = VGGSNN(2, 10, net["size"], net["channels"], net["pool"])
    spec = TrainSpec(epochs=epochs, lr=1e-3, batch_size=batch, seed=0)
    history = fit(model, data, None, loss_step(lambda out, y: tet_loss(out, y, 1e-3, 1.0)), spec, ckpt, device,
                  progress=False)
    return {**history[-1], "world": dd.world_size()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--network", choices=sorted(NETWORKS), default="demo")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--batch", type=int, default=40, help="global batch (split over the processes)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        common = (args.network, args.samples, args.batch, args.epochs, args.device, args.threads)
        runs[1] = train(*common, f"{tmp}/one")
        runs[args.processes] = dd.launch(train, (*common, f"{tmp}/many"), dd.Topology(procs_per_node=args.processes),
                                         args.device)
    one, many = runs[1]["samples_per_second"], runs[args.processes]["samples_per_second"]
    result = {"network": args.network, "device": args.device, "global_batch": args.batch, "T": T,
              "threads_per_process": args.threads, "machine": platform.node(), "torch": torch.__version__,
              "samples_per_second": {"1": one, str(args.processes): many},
              "speed_up": many / one, "scaling_efficiency": many / (args.processes * one)}
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()

"""Throughput of the event-driven simulator (synaptic operations per second, one core) on the demo network.

The network is the trained, deployed MTT network of the demo run when it exists
(``results/mtt/nmnist/mtt_s1000/deployed.pt``), else the demo architecture of
``config/papers/mtt.yaml`` with random weights, biases removed (labelled in the output).
The input is the raw N-MNIST demo test events. The kernel is compiled (or loaded from
numba's cache) first; the timed runs exclude compilation.

Usage::

    python bench/eventsim_throughput.py [--deployed PATH] [--recordings 100] [--repeats 3] [--out bench.json]

Also checks agreement with the time-stepped reference on the first recording (one step per
distinct timestamp, first ``--reference-events`` events).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
import yaml

from reprolab.data.events import EventSet
from reprolab.data.nmnist import read_archive
from reprolab.snn import eventsim
from reprolab.snn.deploy import DeployedNet, export_staged, remove_biases
from reprolab.snn.mtt import build_staged

REPO = Path(__file__).resolve().parents[1]


def demo_network(path: Path) -> tuple[DeployedNet, str]:
    if path.exists():
        return DeployedNet.load(path), f"trained: {path}"
    spec = yaml.safe_load((REPO / "config/papers/mtt.yaml").read_text())["papers"]["mtt"]["scales"]["demo"]
    torch.manual_seed(0)
    model = build_staged(spec["experiments"]["nmnist"]["model"], 2, 10, 34)
    remove_biases(model)
    return export_staged(model, (2, 34, 34)), "demo architecture, random weights (no trained model found)"


def reference_agreement(net: DeployedNet, events: EventSet, n_events: int) -> bool:
    rec = events.recording(0)
    sl = slice(0, n_events)
    ev = EventSet(rec["x"][sl], rec["y"][sl], rec["p"][sl], rec["t"][sl], np.array([0, len(rec["t"][sl])]),
                  events.labels[:1], events.names[:1], events.sensor_size)
    cnet = eventsim.compile_net(net)
    state = eventsim.simulate(cnet, ev, keep_state=True).state
    _, step = np.unique(ev.t, return_inverse=True)
    frames = np.zeros((step.max() + 1, 1, *net.input_shape))
    np.add.at(frames, (step, 0, ev.p.astype(int), ev.y.astype(int), ev.x.astype(int)), 1.0)
    ref = net.run_frames(torch.from_numpy(frames), [step.max() + 1] * net.num_stages)
    counts = eventsim.layer_state(net, cnet, state["counts"])
    return all(np.array_equal(a, b[0].numpy().astype(np.int64)) for a, b in zip(counts, ref["counts"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployed", type=Path, default=REPO / "results/mtt/nmnist/mtt_s1000/deployed.pt")
    parser.add_argument("--recordings", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-events", type=int, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    net, origin = demo_network(args.deployed)
    events = read_archive(REPO / "resources/demo/nmnist-small/test.zip", "test").subset(args.recordings)
    cnet = eventsim.compile_net(net)
    eventsim.warm_up(cnet)
    runs = [eventsim.simulate(cnet, events) for _ in range(args.repeats)]
    best = min(runs, key=lambda r: r.seconds)
    result = {
        "network": origin, "layers": [f"{layer.kind} {tuple(layer.in_shape)} -> {tuple(layer.out_shape)}, pool {layer.pool}"
                                      for layer in net.layers],
        "recordings": len(events), "input_events": int(events.counts.sum()),
        "synaptic_ops": int(best.synops.sum()), "seconds_best_of_repeats": best.seconds,
        "synops_per_second": best.synops_per_second, "events_per_second": float(events.counts.sum() / best.seconds),
        "synops_per_second_all_repeats": [r.synops_per_second for r in runs],
        "accuracy": float((best.prediction == events.labels).mean()),
        "agrees_with_time_stepped_reference": reference_agreement(net, events, args.reference_events),
        "threads": 1, "machine": platform.processor() or platform.machine(), "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

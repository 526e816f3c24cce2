"""A few paper-scale training steps on a GPU, recording throughput (one prepared device check).

Runs the TET networks at the paper's sizes through reprolab's own training loop
(:func:`reprolab.snn.training.fit`, mixed precision, checkpointing) on synthetic batches of
the right shape, and times the bare training step of reprolab's multi-step network against
a plain per-time-step loop of the same network:

- VGGSNN on CIFAR10-DVS frames (2 x 48 x 48, T = 10, batch 128, TET loss);
- ResNet-19 on CIFAR-10 images (3 x 32 x 32 repeated T = 4 times, batch 128).

Usage: ``python bench/gpu_paper_scale.py --out results.json [--quick]`` (``--quick``: tiny
sizes, for a CPU check of the script).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from reprolab.snn.data import ArrayBatches, Preprocess
from reprolab.snn.losses import tet_loss
from reprolab.snn.models import ResNet19, VGGSNN
from reprolab.snn.training import TrainSpec, fit, loss_step

VGG = dict(channels=[64, 128, 256, 256, 512, 512, 512, 512],
           pool_after=[False, True, False, True, False, True, False, True])


def timed_steps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, amp: bool) -> float:
    """Samples per second of forward + backward + Adam on one fixed batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = tet_loss(model(x), y, 0.001, 1.0)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(3):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return steps * x.shape[1] / (time.perf_counter() - start)


def fit_epoch(model: torch.nn.Module, data: np.ndarray, labels: np.ndarray, batch: int, device: str,
              repeat_T: int | None) -> dict:
    """One epoch of the real training loop (AMP on CUDA, checkpoint written) on synthetic data."""
    batches = ArrayBatches(data, labels, batch, Preprocess(repeat_T=repeat_T), shuffle=True)
    spec = TrainSpec(epochs=1, lr=1e-3, batch_size=batch, seed=0)
    with tempfile.TemporaryDirectory() as ckpt:
        start = time.perf_counter()
        history = fit(model, batches, None, loss_step(lambda o, t: tet_loss(o, t, 0.001, 1.0)), spec, ckpt, device,
                      progress=False)
    return {"seconds": time.perf_counter() - start, "samples_per_second": history[-1]["samples_per_second"],
            "train_loss": history[-1]["train_loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    amp = device == "cuda"
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    batch, n_batches = (4, 2) if args.quick else (128, 8)
    size_dvs, size_img = (16, 8) if args.quick else (48, 32)
    vgg = dict(VGG, channels=[8, 8, 8, 8, 8, 8, 8, 8]) if args.quick else VGG
    res_ch = [8, 8, 8, 8] if args.quick else [128, 128, 256, 512]
    out: dict = {"device": torch.cuda.get_device_name() if amp else "cpu", "torch": torch.__version__, "amp": amp}

    frames = (rng.random((batch * n_batches, 10, 2, size_dvs, size_dvs)) < 0.1).astype(np.float32)
    labels = rng.integers(0, 10, batch * n_batches)
    net = VGGSNN(2, 10, size_dvs, vgg["channels"], vgg["pool_after"]).to(device)
    out["vggsnn_cifar10dvs_fit_epoch"] = fit_epoch(net, frames, labels, batch, device, None)
    x = torch.from_numpy(frames[:batch]).transpose(0, 1).contiguous().to(device)
    y = torch.from_numpy(labels[:batch]).to(device)
    out["vggsnn_cifar10dvs_step_samples_per_s"] = timed_steps(net, x, y, args.steps, amp)

    images = rng.standard_normal((batch * n_batches, 3, size_img, size_img)).astype(np.float32)
    res = ResNet19(3, 10, res_ch, blocks=[3, 3, 2], classifier_hidden=256).to(device)
    out["resnet19_cifar10_T4_fit_epoch"] = fit_epoch(res, images, labels, batch, device, 4)
    xi = torch.from_numpy(images[:batch]).to(device).unsqueeze(0).expand(4, -1, -1, -1, -1).contiguous()
    out["resnet19_cifar10_T4_step_samples_per_s"] = timed_steps(res, xi, y, args.steps, amp)
    if amp:
        out["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(out, handle, indent=2)


if __name__ == "__main__":
    main()

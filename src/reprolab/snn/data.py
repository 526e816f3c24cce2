"""Batches of frames or static images for SNN training, deterministic and vectorised.

Datasets are arrays in memory or memory-mapped (``[N, T, P, H, W]`` event frames, or
``[N, C, H, W]`` static images). Each epoch draws its order and augmentation from a
generator seeded by ``(seed, epoch)``, so a run resumed from an epoch checkpoint sees
exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reprolab.core import distributed as dd


@dataclass
class Preprocess:
    """Per-batch transforms applied on the device.

    Attributes
    ----------
    normalize
        ``frame_max``: divide each frame (per sample and time step) by its own maximum
        (TET's CIFAR10-DVS preprocessing); ``none``: keep values.
    resize
        Square output size (bilinear), or ``None``.
    repeat_T
        Static images: repeat the image this many time steps (direct encoding); ``None`` for frames.
    """

    normalize: str = "none"
    resize: int | None = None
    repeat_T: int | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.repeat_T is not None:
            x = x.unsqueeze(1).expand(-1, self.repeat_T, *x.shape[1:])
        if self.normalize == "frame_max":
            peak = x.amax(dim=(-3, -2, -1), keepdim=True).clamp(min=1e-12)
            x = x / peak
        if self.resize is not None and x.shape[-1] != self.resize:
            n, t = x.shape[:2]
            x = F.interpolate(x.flatten(0, 1), size=(self.resize, self.resize), mode="bilinear",
                              align_corners=False).unflatten(0, (n, t))
        return x


@dataclass
class Standardize:
    """Per-channel ``(x - mean) / std`` of ``[..., C, H, W]`` batches (torchvision ``Normalize``).

    Used as :class:`ArrayBatches`' ``finalize`` step, i.e. after augmentation, as torchvision
    pipelines normalise after ``RandomCrop`` (crop padding is then black, not the mean).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (-1, 1, 1)
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        if x.shape[-3] != mean.shape[0]:
            raise ValueError(f"normalize: {mean.shape[0]} channel statistics for {x.shape[-3]}-channel input")
        return (x - mean) / std


@dataclass
class Augment:
    """Training-only augmentation of ``[N, T, C, H, W]`` batches (TET's DVS loader).

    Attributes
    ----------
    hflip
        Flip each sample horizontally with probability 0.5.
    roll
        Roll each sample by integers drawn uniformly in ``[-roll, roll]`` along x and y.
    crop_pad
        Random crop after zero-padding by ``crop_pad`` pixels (static images).
    """

    hflip: bool = False
    roll: int = 0
    crop_pad: int = 0

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        if self.hflip:
            flip = torch.rand(n, generator=gen) < 0.5
            x = torch.where(flip.view(n, 1, 1, 1, 1).to(x.device), x.flip(-1), x)
        if self.roll:
            dy = torch.randint(-self.roll, self.roll + 1, (n,), generator=gen)
            dx = torch.randint(-self.roll, self.roll + 1, (n,), generator=gen)
            x = _shift(x, dy, dx, wrap=True)
        if self.crop_pad:
            dy = torch.randint(-self.crop_pad, self.crop_pad + 1, (n,), generator=gen)
            dx = torch.randint(-self.crop_pad, self.crop_pad + 1, (n,), generator=gen)
            x = _shift(x, dy, dx, wrap=False)
        return x


def _shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Shift every sample by its own ``(dy, dx)`` with one gather; wrap (roll) or zero-fill (crop)."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    rows = torch.arange(h).view(1, h) - dy.view(n, 1)
    cols = torch.arange(w).view(1, w) - dx.view(n, 1)
    valid = None
    if wrap:
        rows, cols = rows % h, cols % w
    else:
        valid = ((rows >= 0) & (rows < h)).view(n, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, w)
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    lead = (1,) * (x.dim() - 3)
    rows_idx = rows.to(x.device).view(n, *lead, h, 1).expand(*x.shape[:-1], 1).expand(*x.shape[:-2], h, w)
    out = torch.gather(x, -2, rows_idx)
    cols_idx = cols.to(x.device).view(n, *lead, 1, w).expand(*x.shape)
    out = torch.gather(out, -1, cols_idx)
    if valid is not None:
        out = out * valid.to(x.device).view(n, *lead, h, w)
    return out


class ArrayBatches:
    """Iterate over ``(x, y)`` batches of an array dataset.

    Parameters
    ----------
    data
        ``[N, ...]`` array (may be a memory map).
    labels
        ``[N]`` integer labels.
    batch_size
        Samples per batch (the last batch may be smaller).
    preprocess
        Applied to every batch (normalisation, resize, repetition over time).
    augment
        Applied to training batches only; ``None`` for evaluation.
    shuffle
        Draw a new permutation each epoch.
    finalize
        Applied last, after augmentation (e.g. :class:`Standardize`); ``None`` for nothing.
    """

    def __init__(self, data: np.ndarray, labels: np.ndarray, batch_size: int, preprocess: Preprocess,
                 augment: Augment | None = None, shuffle: bool = False,
                 finalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.data, self.labels = data, np.asarray(labels, dtype=np.int64)
        self.batch_size, self.preprocess, self.augment, self.shuffle = batch_size, preprocess, augment, shuffle
        self.finalize = finalize

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def epoch(self, seed: int, epoch: int, device: str = "cpu",
              shard: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of one epoch, ``x`` time-major ``[T, N, ...]`` on ``device`` (``shard``: see :meth:`indexed_epoch`)."""
        for _, x, y in self.indexed_epoch(seed, epoch, device, shard):
            yield x, y

    def indexed_epoch(self, seed: int, epoch: int, device: str = "cpu",
                      shard: bool = False) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """``(sample indices, x, y)`` batches of one epoch.

        With ``shard`` in a data-parallel process group, each process gets its share of the
        epoch's order (``DistributedSampler``: every ``W``-th sample of the same permutation) in
        batches of ``batch_size / W``, so the processes' ``k``-th batches together are the
        one-process ``k``-th batch. Without it (calibration, probes) every process sees all.
        """
        gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
        n = len(self.labels)
        order = torch.randperm(n, generator=gen).numpy() if self.shuffle else np.arange(n)
        size = self.batch_size
        if shard and dd.world_size() > 1:  # the same permutation (DistributedSampler seeds with seed + epoch), this rank's share
            order = dd.shard(n, int(seed) * 100_003, int(epoch), self.shuffle)
            size = max(1, self.batch_size // dd.world_size())
        for lo in range(0, len(order), size):
            idx = np.sort(order[lo:lo + size]) if not self.shuffle else order[lo:lo + size]
            x = torch.from_numpy(np.ascontiguousarray(self.data[idx])).to(device)
            x = self.preprocess(x)
            if self.augment is not None:
                x = self.augment(x, gen)
            if self.finalize is not None:
                x = self.finalize(x)
            yield idx, to_time_major(x), torch.from_numpy(self.labels[idx]).to(device)


def to_time_major(x: torch.Tensor) -> torch.Tensor:
    """``[N, T, ...]`` -> ``[T, N, ...]`` (the one transpose at the data boundary)."""
    return x.transpose(0, 1).contiguous()

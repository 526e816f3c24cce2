"""ImageNet-1K (ILSVRC2012) from the user's archives: preparation and streaming batches.

Shared by every paper that runs on ImageNet (``sdconv``, ``calib``). The three archives
(``config/datasets.yaml``: access ``credentials``) are supplied by the user in
``<data_dir>/downloads/imagenet/``; the ``data_imagenet`` rule (``workflow/rules/data.smk``)
unpacks them once with torchvision's parser (:func:`prepare_imagenet`) and writes a manifest
that the papers' rules take as input. torch and torchvision are imported lazily.

Transforms are torchvision's standard ImageNet recipe (also the one of the official
``main_cal_imagenet.py`` of SNN_Calibration and of SD-Conv's training code):
RandomResizedCrop + horizontal flip for training, resize to ``256/224`` of the crop and
centre crop for evaluation, then ImageNet mean / std normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core import distributed as dd
from reprolab.core.errors import DataError
from reprolab.core.io import read_json, write_json

#: Channel mean and standard deviation of the ImageNet training images (torchvision's values).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NUM_CLASSES = 1000


class FolderBatches:
    """Streaming batches of an image dataset, with the interface of :class:`reprolab.snn.data.ArrayBatches`.

    Each epoch's order and augmentation come from a generator seeded by ``(seed, epoch)``
    (the DataLoader derives its worker seeds from it), so a resumed run sees the batches an
    uninterrupted run would.
    """

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool, workers: int = 0) -> None:
        self.dataset, self.batch_size, self.shuffle, self.workers = dataset, batch_size, shuffle, workers

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def epoch(self, seed: int, epoch: int, device: str = "cpu", shard: bool = False) -> Iterator[tuple[Any, Any]]:
        """Batches of one epoch, ``x`` as ``[1, N, C, H, W]`` on ``device``."""
        for _, x, y in self.indexed_epoch(seed, epoch, device, shard):
            yield x, y

    def indexed_epoch(self, seed: int, epoch: int, device: str = "cpu",
                      shard: bool = False) -> Iterator[tuple[np.ndarray, Any, Any]]:
        """``(sample indices, x, y)`` batches; with ``shard`` under data parallelism, this process's share.

        The order is ``DistributedSampler``'s (the permutation of ``seed * 100003 + epoch``,
        every ``W``-th sample for ``W`` processes, batches of ``batch_size / W``), as for
        :class:`reprolab.snn.data.ArrayBatches`.
        """
        import torch
        from torch.utils.data import DistributedSampler

        world = dd.world_size() if shard else 1
        sampler = DistributedSampler(self.dataset, num_replicas=world, rank=dd.rank() if shard else 0,
                                     shuffle=self.shuffle,
                                     seed=int(seed) * 100_003, drop_last=False)
        sampler.set_epoch(int(epoch))
        order = np.fromiter(iter(sampler), dtype=np.int64)
        size = max(1, self.batch_size // world)
        gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))  # worker seeds
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=size, sampler=order.tolist(), generator=gen,
                                             num_workers=self.workers, pin_memory=device.startswith("cuda"))
        for k, (x, y) in enumerate(loader):
            yield (order[k * size:(k + 1) * size], x.to(device, non_blocking=True).unsqueeze(0),
                   y.to(device, non_blocking=True))


def prepare_imagenet(train_tar: str | Path, val_tar: str | Path, devkit: str | Path, out: str | Path) -> None:
    """The ``data_imagenet`` rule: unpack the ILSVRC2012 archives with torchvision's parser.

    torchvision checks the archives' MD5 and unpacks ``train/`` and ``val/`` (class folders)
    beside them; the manifest ``out`` records the folder and the image counts.

    Raises
    ------
    DataError
        If the three archives are not in one folder.
    """
    import torchvision

    root = Path(train_tar).parent
    for archive in (val_tar, devkit):
        if Path(archive).parent != root:
            raise DataError(f"{archive}: the three ImageNet archives must be in one folder ({root})")
    counts = {split: len(torchvision.datasets.ImageNet(str(root), split=split)) for split in ("train", "val")}
    write_json(out, {"root": str(root), **counts})


def imagenet_transform(train: bool, image_size: int = 224) -> Any:
    """torchvision's ImageNet transform: augmenting for training, resize + centre crop otherwise."""
    from torchvision import transforms as T

    normalize = T.Normalize(MEAN, STD)
    if train:
        return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    return T.Compose([T.Resize(round(image_size * 256 / 224)), T.CenterCrop(image_size), T.ToTensor(), normalize])


def imagenet_dataset(manifest: str | Path, split: str, augment: bool, image_size: int = 224,
                     limit: int | None = None) -> Any:
    """The ``train`` or ``val`` split of the prepared ImageNet as a torch dataset.

    Parameters
    ----------
    manifest
        ``prepared.json`` written by :func:`prepare_imagenet`.
    split
        ``train`` or ``val``.
    augment
        Training augmentation (True) or the evaluation transform (False; also what
        calibration images get by default).
    limit
        Keep the first ``limit`` images (in torchvision's sorted order).
    """
    import torch
    import torchvision

    if split not in ("train", "val"):
        raise DataError(f"ImageNet split {split!r}: use train or val")
    root = read_json(manifest)["root"]
    ds = torchvision.datasets.ImageNet(root, split=split, transform=imagenet_transform(augment, image_size))
    if limit is not None:
        ds = torch.utils.data.Subset(ds, range(min(limit, len(ds))))
    return ds


def imagenet_batches(exp: dict, manifest: str | Path, train: bool, limit: int | None = None) -> FolderBatches:
    """ImageNet batches of an experiment: ``optim.batch_size``, ``loader.image_size`` and ``loader.workers``."""
    loader = exp.get("loader", {})
    ds = imagenet_dataset(manifest, "train" if train else "val", train, loader.get("image_size", 224), limit)
    return FolderBatches(ds, exp["optim"]["batch_size"], shuffle=train, workers=loader.get("workers", 0))

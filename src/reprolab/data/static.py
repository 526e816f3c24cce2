"""Static image datasets for direct (repeated-input) encoding: scikit-learn digits, CIFAR-10/100."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reprolab.core.io import atomic_path


def digits_split(test_fraction: float = 0.2, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's 1,797 real 8x8 digits, scaled to [0, 1], fixed stratified split.

    Returns
    -------
    dict
        ``{"train": (images [N, 1, 8, 8] float32, labels), "test": (...)}``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(images, digits.target, test_size=test_fraction,
                                              stratify=digits.target, random_state=seed)
    return {"train": (x_tr, y_tr.astype(np.int64)), "test": (x_te, y_te.astype(np.int64))}


#: Per-channel ``(mean, std)`` with which :func:`cifar_split` standardised the cached images (so that a
#: consumer can map them back to [0, 1] pixels); datasets not listed are cached as [0, 1] pixels.
CACHE_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def cifar_split(name: str, root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10/100 via torchvision's downloader (md5-verified), normalised per channel.

    Returns ``[N, 3, 32, 32]`` float32 images and labels.
    """
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[name]
    ds = cls(root=str(root), train=(split == "train"), download=True)
    x = ds.data.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    mean, std = (np.array(v, np.float32).reshape(1, 3, 1, 1) for v in CACHE_NORMALIZATION[name])
    return (x - mean) / std, np.asarray(ds.targets, dtype=np.int64)


def save_images(path: str | Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images and labels to one ``.npz`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=images, labels=labels)

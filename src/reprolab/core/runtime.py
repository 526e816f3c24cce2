"""Seeding, thread count and the one place where the compute device is chosen."""

from __future__ import annotations

import os
import random

import numpy as np

from reprolab.core.errors import ConfigError


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (if installed) and return a NumPy generator.

    Parameters
    ----------
    seed
        Non-negative integer seed.

    Returns
    -------
    numpy.random.Generator
        A generator seeded with ``seed`` for code that takes an explicit random state.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def set_threads(threads: int) -> None:
    """Limit intra-op threads of torch to what Snakemake granted the job."""
    threads = max(1, int(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(threads)


def choose_device(preference: str = "auto") -> str:
    """Return the torch device name to use: ``cuda`` when present, else ``cpu``.

    Parameters
    ----------
    preference
        ``auto`` (default), ``cpu`` or ``cuda`` (config key ``device``).

    Raises
    ------
    ConfigError
        If ``cuda`` is requested on a machine without a GPU, or the value is unknown.
    """
    import torch

    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cpu":
        return "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("config key 'device' is 'cuda' but no GPU is visible; set device: auto or cpu")
        return "cuda"
    raise ConfigError(f"config key 'device' must be auto, cpu or cuda, not {preference!r}")

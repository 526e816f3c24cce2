"""Small statistics shared by the papers' claims tables: spreads, noise levels, verdicts."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.io import read_json


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else 0.0)


def noise_level(accuracy: float, n_test: int, n_seeds: int = 1, seed_std: float = 0.0) -> float:
    """Two standard errors of the difference of two methods' mean accuracies.

    The larger of the binomial error of a test set of ``n_test`` samples (around
    ``accuracy``) and the spread over ``n_seeds`` seeds; a difference below it is not
    called either way.
    """
    binom = math.sqrt(2 * accuracy * (1 - accuracy) / max(n_test, 1) / max(n_seeds, 1))
    return 2 * max(binom, seed_std * math.sqrt(2 / max(n_seeds, 1)))


def verdict(diff: float, noise: float) -> str:
    """``supported`` / ``not supported`` when ``diff`` (claim direction positive) exceeds ``noise``."""
    if abs(diff) < max(noise, 1e-12):
        return "inconclusive"
    return "supported" if diff > 0 else "not supported"


def group_runs(paths: list[str], key: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{experiment: {record[key]: [record per seed]}}`` from ``results/<id>/<experiment>/<run>/<file>.json``."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for p in sorted(paths):
        rec = read_json(p)
        out[Path(p).parts[-3]][rec[key]].append(rec)
    return out

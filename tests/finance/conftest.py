"""Small hand-made StockNet-like data for the finance tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprolab.finance.stocknet import Corpus, assemble_corpus

SPLITS = {
    "train": ["2014-01-01", "2014-05-01"],
    "dev": ["2014-05-01", "2014-06-01"],
    "test": ["2014-06-01", "2014-07-01"],
}


def make_corpus(seed: int = 0, n_days: int = 140, n_stocks: int = 2, posts_per_day: int = 3) -> Corpus:
    """Random prices on business days from 2014-01-01 and random posts around the clock."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2014-01-01", periods=n_days)
    prices, posts = [], []
    words = ["buy", "sell", "calls", "puts", "news", "stock", "today", "up", "down", "flat"]
    for s in range(n_stocks):
        mv = rng.normal(0, 0.015, n_days)
        prices.append(
            pd.DataFrame(
                {
                    "stock": s,
                    "date": dates,
                    "open_rel": rng.normal(0, 0.005, n_days),
                    "high_rel": np.abs(rng.normal(0, 0.01, n_days)),
                    "low_rel": -np.abs(rng.normal(0, 0.01, n_days)),
                    "movement": mv,
                    "volume": rng.integers(1_000, 10_000, n_days).astype(float),
                }
            )
        )
        n_posts = n_days * posts_per_day
        start = pd.Timestamp("2014-01-01").value // 10**9
        times = np.sort(start + rng.integers(0, (n_days + 40) * 86_400, n_posts))
        posts.append(
            pd.DataFrame(
                {
                    "stock": s,
                    "time": times,
                    "user": rng.integers(0, 12, n_posts).astype(str),
                    "tokens": [list(rng.choice(words, 4)) for _ in range(n_posts)],
                }
            )
        )
    return assemble_corpus(
        [f"S{s}" for s in range(n_stocks)],
        pd.concat(prices, ignore_index=True),
        pd.concat(posts, ignore_index=True),
        "America/New_York",
        "16:00",
    )


@pytest.fixture
def corpus() -> Corpus:
    return make_corpus()


@pytest.fixture
def corpus_factory():
    """``make_corpus`` itself, for tests that need several corpora."""
    return make_corpus


@pytest.fixture
def splits() -> dict[str, list[str]]:
    return dict(SPLITS)

"""Post representations: word ids for the DAN and the offline MiniLM sentence encoder."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.finance.text import (
    build_text_cache,
    build_vocab,
    encode_texts,
    load_minilm,
    load_text_cache,
    truncate_words,
    used_posts,
    word_ids,
)


def test_truncate_and_word_ids():
    assert truncate_words(["a b c d", "e"], 2) == ["a b", "e"]
    vocab = build_vocab(["buy buy sell", "buy hold"], min_count=2, max_size=10)
    assert vocab == ["<pad>", "<unk>", "buy"]
    ids = word_ids(["buy sell buy", "x"], vocab, 4)
    assert ids.tolist() == [[2, 1, 2, 0], [1, 0, 0, 0]]


def test_used_posts_skips_padding():
    assert used_posts(np.array([[-1, 3], [3, 0]])).tolist() == [0, 3]


def test_dan_cache_covers_every_sample_post(tmp_path, corpus):
    from reprolab.finance.stocknet import SampleConfig, build_samples

    splits = {
        "train": ["2014-01-01", "2014-05-01"],
        "dev": ["2014-05-01", "2014-06-01"],
        "test": ["2014-06-01", "2014-07-01"],
    }
    samples = build_samples(
        corpus, SampleConfig(splits=splits, price_window=10, text_window_days=5, max_posts=4)
    )
    cfg = {"encoder": "dan", "max_words": 3, "vocab_min_count": 1, "vocab_size": 100}
    build_text_cache(corpus, samples, cfg, "cpu", tmp_path / "t.npz")
    cache = load_text_cache(tmp_path / "t.npz")
    rows = cache["post_row"][samples["post_ids"][samples["post_ids"] >= 0]]
    assert (rows >= 0).all() and cache["table"].shape[1] == 3
    with pytest.raises(ConfigError, match="encoder"):
        build_text_cache(corpus, samples, dict(cfg, encoder="word2vec"), "cpu", tmp_path / "u.npz")


def test_minilm_loads_offline_and_encodes_meaning():
    model = load_minilm("cpu")
    emb = encode_texts(
        ["the stock price went up strongly", "shares rallied higher today", "my cat sleeps on the sofa"],
        model,
        batch_size=8,
        max_tokens=32,
        bf16=False,
        device="cpu",
    )
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2

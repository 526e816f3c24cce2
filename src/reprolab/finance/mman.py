"""Multi-modal attention network for stock movements (He & Gu, KDF@AAAI 2022, arXiv:2112.13593).

No code of the paper is public; the method follows the card (``shared/papers/mman.md``, a
third-party summary of the paper's Eqs. 1-29, unverified). Where the summary is silent the
choice is a configuration key and is stated in the report.

Architecture (card Sec. 2.2):

1. Text: each post's vector (a cached sentence embedding, or a trained Deep Averaging Network
   over word ids) plus a sinusoidal encoding of the post's age in hours (time-based positional
   encoding, base ``c = 10000``), then a Transformer encoder over the posts of the window.
2. Credibility: an MLP embeds the poster's social-impact features; a Transformer-decoder layer
   takes queries and keys from that embedding and values from the encoded text ("credibility
   fusion"); credibility weights (a softmax over the posts of the social embedding) pool the posts.
3. Price: CNNpred (Hoseinzade & Haratizadeh 2019) over the window of days x 7 features: a
   1 x F convolution that mixes the features of a day, then two temporal convolutions with
   max pooling; each pooled step is a price token.
4. Fusion (DFAF, Gao et al. CVPR 2019): inter-modality attention (text tokens attend to price
   tokens and vice versa) and intra-modality self-attention whose queries and keys are gated by
   sigmoid channel gates computed from the other modality; the pooled text and price vectors are
   multiplied element-wise (fused map) and a 1-D convolutional head produces two capsules.
5. Loss: the capsule margin loss with ``m+ = 0.9, m- = 0.1, lambda = 0.5`` on the capsule lengths
   plus ``0.0005`` x the squared error of a reconstruction of the inputs from the masked
   capsules (Sabour et al. 2017, Eq. 4, read as the card suggests).

Ablations (card Sec. 2.3, proposed reading): ``oH`` prices only, ``oC`` posts only, ``nA`` no
inter/intra-modality attention, ``nH`` no credibility branch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.core.io import append_jsonl, atomic_path
from reprolab.finance.backtest import classification_metrics
from reprolab.finance.stocknet import Corpus, price_windows

log = logging.getLogger("reprolab.finance")

#: Model variants: flags (text, price, credibility, attention).
VARIANTS: dict[str, dict[str, bool]] = {
    "mman": {"text": True, "price": True, "credibility": True, "attention": True},
    "nA": {"text": True, "price": True, "credibility": True, "attention": False},
    "nH": {"text": True, "price": True, "credibility": False, "attention": True},
    "oC": {"text": True, "price": False, "credibility": True, "attention": False},
    "oH": {"text": False, "price": True, "credibility": False, "attention": False},
}


# --------------------------------------------------------------------------- inputs


@dataclass
class ModelData:
    """Tensors of every usable sample; batches index rows of them.

    Attributes
    ----------
    table
        Post representations: float embeddings ``[U, D]`` or word ids ``[U, W]``.
    post_row
        ``[N, P]`` rows of ``table`` (0 at padding).
    mask
        ``[N, P]`` True for a real post.
    age
        ``[N, P]`` hours between the post and the decision.
    cred
        ``[N, P, F]`` standardised credibility features.
    price
        ``[N, W, 7]`` standardised price windows.
    label
        ``[N]`` 0 / 1, -1 where the dead zone dropped the sample.
    split
        ``[N]`` -1 / 0 / 1 / 2 (none / train / dev / test).
    encoder
        ``minilm`` or ``dan``; ``vocab_size`` for ``dan``.
    """

    table: torch.Tensor
    post_row: torch.Tensor
    mask: torch.Tensor
    age: torch.Tensor
    cred: torch.Tensor
    price: torch.Tensor
    label: torch.Tensor
    split: torch.Tensor
    encoder: str
    vocab_size: int

    def rows(self, split: int) -> np.ndarray:
        """Indices of the labelled samples of one split."""
        return np.flatnonzero(((self.split == split) & (self.label >= 0)).numpy())

    def batch(self, idx: np.ndarray, device: str) -> dict[str, torch.Tensor]:
        """One batch on ``device``; post representations gathered from the table."""
        t = torch.from_numpy(np.asarray(idx, dtype=np.int64))
        rows = self.post_row[t]
        return {
            "posts": self.table[rows].to(device),
            "mask": self.mask[t].to(device),
            "age": self.age[t].to(device),
            "cred": self.cred[t].to(device),
            "price": self.price[t].to(device),
            "label": self.label[t].to(device),
        }


def _standardise(x: np.ndarray, fit_rows: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Subtract the mean and divide by the standard deviation of the training rows, per last-axis feature."""
    ref = x[fit_rows]
    if valid is not None:
        ref = ref[valid[fit_rows]]
    ref = ref.reshape(-1, x.shape[-1])
    mean, std = ref.mean(0), ref.std(0)
    return ((x - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


def make_model_data(
    corpus: Corpus, samples: dict[str, np.ndarray], text: dict[str, Any], price_days: int
) -> ModelData:
    """Assemble :class:`ModelData`; standardisation statistics come from the training split only."""
    train = np.flatnonzero((samples["split"] == 0) & (samples["label"] >= 0))
    post_ids = samples["post_ids"]
    mask = post_ids >= 0
    row = np.where(mask, text["post_row"][np.maximum(post_ids, 0)], 0)
    if (row[mask] < 0).any():
        raise ConfigError(
            "the text cache does not cover every post of the samples; rerun mman_text "
            "(it must be built from the same samples file)"
        )
    prices = price_windows(corpus, samples["price_row"], price_days)
    table = text["table"]
    table_t = torch.from_numpy(
        table.astype(np.float32) if text["encoder"] == "minilm" else table.astype(np.int64)
    )
    return ModelData(
        table=table_t,
        post_row=torch.from_numpy(row.astype(np.int64)),
        mask=torch.from_numpy(mask),
        age=torch.from_numpy(samples["post_age_hours"].astype(np.float32)),
        cred=torch.from_numpy(_standardise(samples["credibility"], train, mask) * mask[..., None]),
        price=torch.from_numpy(_standardise(prices, train)),
        label=torch.from_numpy(samples["label"].astype(np.int64)),
        split=torch.from_numpy(samples["split"].astype(np.int64)),
        encoder=text["encoder"],
        vocab_size=int(text["vocab_size"]),
    )


# --------------------------------------------------------------------------- modules


class TimeEncoding(nn.Module):
    """Sinusoidal encoding of a continuous time offset (Vaswani et al. 2017 with time for position).

    ``PE(t)[2i] = sin(t / c^(2i/d))``, ``PE(t)[2i+1] = cos(t / c^(2i/d))`` with base ``c``
    (card: "time-based positional encoding, base c = 10000").
    """

    def __init__(self, dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        self.register_buffer(
            "inv_freq", base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim), persistent=False
        )
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t.unsqueeze(-1) * self.inv_freq
        return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)[..., : self.dim]


class DeepAveragingNetwork(nn.Module):
    """Deep Averaging Network (Iyyer et al. 2015): mean of word embeddings, then feed-forward layers."""

    def __init__(self, vocab_size: int, embed_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.ff = nn.Sequential(
            nn.Linear(embed_dim, out_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim)
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        present = (ids > 0).float().unsqueeze(-1)
        mean = (self.embed(ids) * present).sum(-2) / present.sum(-2).clamp(min=1.0)
        return self.ff(mean)


class Attention(nn.Module):
    """Multi-head attention whose queries and keys may be scaled by channel gates ``(1 + g)``.

    The gate is DFAF's dynamic intra-modality conditioning (Gao et al. 2019, Eqs. 6-8): a sigmoid
    of the other modality's pooled features, one value per channel.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"papers.mman.model: hidden ({dim}) must be divisible by heads ({heads})")
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.heads, self.dropout = heads, dropout

    def forward(
        self,
        x_q: torch.Tensor,
        x_kv: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        gate: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q, k, v = self.q(x_q), self.k(x_kv), self.v(x_kv if values is None else values)
        if gate is not None:
            q, k = q * (1 + gate.unsqueeze(1)), k * (1 + gate.unsqueeze(1))
        b, lq, d = q.shape
        split = lambda t: t.view(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        # Dropout acts on the residual branches (Residual), not on the attention probabilities.
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
        return self.o(out.transpose(1, 2).reshape(b, lq, d))


class Residual(nn.Module):
    """``LayerNorm(x + Dropout(f(...)))`` (post-norm, as in the Transformer)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm, self.drop = nn.LayerNorm(dim), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.drop(update))


class FeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.res = Residual(dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(x, self.net(x))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of ``x [B, L, D]`` where ``mask [B, L]`` is True."""
    m = mask.unsqueeze(-1).float()
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class CredibilityDecoder(nn.Module):
    """Credibility fusion: queries and keys from the social-impact embedding, values from the text."""

    def __init__(self, n_features: int, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.social = nn.Sequential(nn.Linear(n_features, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.attn = Attention(dim, heads, dropout)
        self.res = Residual(dim, dropout)
        self.ff = FeedForward(dim, dropout)
        self.score = nn.Linear(dim, 1)

    def forward(
        self, text: torch.Tensor, cred: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.social(cred)
        fused = self.ff(self.res(text, self.attn(s, s, key_mask=mask, values=text)))
        weights = self.score(s).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(-1)
        return fused, weights


class CNNpred(nn.Module):
    """2D-CNNpred for one stock: a ``1 x F`` convolution, then two ``3 x 1`` convolutions with max pooling."""

    def __init__(self, n_features: int, channels: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, (1, n_features)),
            nn.ReLU(),
            nn.Conv2d(channels, channels, (3, 1), padding=(1, 0)),
            nn.ReLU(),
            nn.MaxPool2d((2, 1)),
            nn.Conv2d(channels, channels, (3, 1), padding=(1, 0)),
            nn.ReLU(),
            nn.MaxPool2d((2, 1)),
            nn.Dropout(dropout),
        )
        self.proj = nn.Linear(channels, dim)

    def forward(self, price: torch.Tensor) -> torch.Tensor:
        h = self.net(price.unsqueeze(1)).squeeze(-1).transpose(1, 2)
        return self.proj(h)


class FusionBlock(nn.Module):
    """One DFAF block: inter-modality attention flow, then gated intra-modality attention flow."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.t_from_p, self.p_from_t = Attention(dim, heads, dropout), Attention(dim, heads, dropout)
        self.t_self, self.p_self = Attention(dim, heads, dropout), Attention(dim, heads, dropout)
        self.gate_t, self.gate_p = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.res = nn.ModuleList(Residual(dim, dropout) for _ in range(4))
        self.ff_t, self.ff_p = FeedForward(dim, dropout), FeedForward(dim, dropout)

    def forward(
        self, t: torch.Tensor, p: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        t2 = self.res[0](t, self.t_from_p(t, p))
        p2 = self.res[1](p, self.p_from_t(p, t, key_mask=mask))
        g_t = torch.sigmoid(self.gate_t(p2.mean(1)))
        g_p = torch.sigmoid(self.gate_p(masked_mean(t2, mask)))
        t3 = self.res[2](t2, self.t_self(t2, t2, key_mask=mask, gate=g_t))
        p3 = self.res[3](p2, self.p_self(p2, p2, gate=g_p))
        return self.ff_t(t3), self.ff_p(p3)


def squash(s: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Capsule non-linearity ``|s|^2 / (1 + |s|^2) * s / |s|`` (Sabour et al. 2017, Eq. 1)."""
    sq = (s * s).sum(-1, keepdim=True)
    return sq / (1 + sq) * s / torch.sqrt(sq + eps)


class MMAN(nn.Module):
    """The multi-modal attention network and its ablations (see the module docstring).

    Parameters
    ----------
    variant
        A key of :data:`VARIANTS`.
    model_cfg
        ``papers.mman.model``.
    post_dim
        Size of a cached post embedding (``minilm``), or ``None`` for word ids (``dan``).
    vocab_size
        Word vocabulary for ``dan``.
    n_cred, price_days
        Credibility features per post; days of the price window.
    """

    def __init__(
        self,
        variant: str,
        model_cfg: dict[str, Any],
        post_dim: int | None,
        vocab_size: int,
        n_cred: int,
        price_days: int,
        n_price_features: int = 7,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"papers.mman.variants: {variant!r} is unknown; use {', '.join(VARIANTS)}")
        self.flags = VARIANTS[variant]
        h, heads, drop = model_cfg["hidden"], model_cfg["heads"], model_cfg["dropout"]
        self.recon_dim = 0
        if self.flags["text"]:
            self.post = (
                nn.Linear(post_dim, h)
                if post_dim is not None
                else DeepAveragingNetwork(vocab_size, model_cfg["word_dim"], h, drop)
            )
            self.time = TimeEncoding(h, model_cfg["time_base"])
            self.scale = math.sqrt(h)
            layer = nn.TransformerEncoderLayer(h, heads, 2 * h, drop, batch_first=True)
            self.text_encoder = nn.TransformerEncoder(layer, model_cfg["layers"], enable_nested_tensor=False)
            self.drop = nn.Dropout(drop)
            if post_dim is not None:
                self.recon_dim += post_dim
        if self.flags["credibility"]:
            self.credibility = CredibilityDecoder(n_cred, h, heads, drop)
        if self.flags["price"]:
            self.price = CNNpred(n_price_features, model_cfg["price_channels"], h, drop)
            self.recon_dim += price_days * n_price_features
        if self.flags["attention"] and self.flags["text"] and self.flags["price"]:
            self.fusion = nn.ModuleList(
                FusionBlock(h, heads, drop) for _ in range(model_cfg["fusion_blocks"])
            )
        c, cap = model_cfg["head_channels"], model_cfg["capsule_dim"]
        self.head_conv = nn.Conv1d(1, c, 3, padding=1)
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(c * h, 2 * cap))
        self.capsule_dim = cap
        if self.recon_dim:
            self.decoder = nn.Sequential(nn.Linear(2 * cap, h), nn.ReLU(), nn.Linear(h, self.recon_dim))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Capsule lengths ``[B, 2]`` (down, up), capsules, credibility weights ``[B, P]``, fused map."""
        mask = batch["mask"]
        out: dict[str, torch.Tensor] = {}
        t = p = None
        if self.flags["text"]:
            # Post vectors are scaled by sqrt(hidden) before the positional encoding is added (Vaswani et al. 2017, 3.4).
            t = self.drop(self.post(batch["posts"]) * self.scale + self.time(batch["age"]))
            t = self.text_encoder(t, src_key_padding_mask=~mask)
            if self.flags["credibility"]:
                t, out["weights"] = self.credibility(t, batch["cred"], mask)
        if self.flags["price"]:
            p = self.price(batch["price"])
        if hasattr(self, "fusion"):
            for block in self.fusion:
                t, p = block(t, p, mask)
        pooled = []
        if t is not None:
            pooled.append(
                (t * out["weights"].unsqueeze(-1)).sum(1) if "weights" in out else masked_mean(t, mask)
            )
        if p is not None:
            pooled.append(p.mean(1))
        fused = pooled[0] * pooled[1] if len(pooled) == 2 else pooled[0]
        h = F.relu(self.head_conv(fused.unsqueeze(1))).flatten(1)
        caps = squash(self.head(h).view(-1, 2, self.capsule_dim))
        out.update(capsules=caps, lengths=caps.norm(dim=-1), fused=fused)
        return out

    def reconstruction_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The inputs the decoder reconstructs: mean post embedding and/or the price window."""
        parts = []
        if self.flags["text"] and isinstance(self.post, nn.Linear):
            parts.append(masked_mean(batch["posts"], batch["mask"]))
        if self.flags["price"]:
            parts.append(batch["price"].flatten(1))
        return torch.cat(parts, -1) if parts else None

    def reconstruct(self, capsules: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Decode the capsules with all but the ``label`` capsule masked out (Sabour et al. 2017, Sec. 4.1)."""
        onehot = F.one_hot(label, 2).to(capsules.dtype).unsqueeze(-1)
        return self.decoder((capsules * onehot).flatten(1))


def margin_loss(
    lengths: torch.Tensor, label: torch.Tensor, m_plus: float, m_minus: float, lam: float
) -> torch.Tensor:
    """``sum_k T_k max(0, m+ - |v_k|)^2 + lambda (1 - T_k) max(0, |v_k| - m-)^2``, mean over the batch.

    Sabour et al. 2017, Eq. 4; the card's values m+ = 0.9, m- = 0.1, lambda = 0.5.
    """
    t = F.one_hot(label, lengths.shape[-1]).to(lengths.dtype)
    loss = t * F.relu(m_plus - lengths) ** 2 + lam * (1 - t) * F.relu(lengths - m_minus) ** 2
    return loss.sum(-1).mean()


def mman_loss(
    model: MMAN, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], loss_cfg: dict[str, float]
) -> torch.Tensor:
    """Margin loss plus ``recon_weight`` x the summed squared reconstruction error (card Sec. 2.2, step 5)."""
    label = batch["label"]
    loss = margin_loss(out["lengths"], label, loss_cfg["m_plus"], loss_cfg["m_minus"], loss_cfg["lambda"])
    target = model.reconstruction_target(batch)
    if target is not None and loss_cfg["recon_weight"] > 0:
        recon = model.reconstruct(out["capsules"], label)
        loss = loss + loss_cfg["recon_weight"] * ((recon - target) ** 2).sum(-1).mean()
    return loss


# --------------------------------------------------------------------------- training


def run_key(payload: dict[str, Any]) -> str:
    """Hash of everything that defines a run; a checkpoint with another key is not resumed."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_model(variant: str, cfg: dict[str, Any], data: ModelData) -> MMAN:
    post_dim = data.table.shape[1] if data.encoder == "minilm" else None
    return MMAN(
        variant,
        cfg["model"],
        post_dim,
        data.vocab_size,
        data.cred.shape[-1],
        data.price.shape[1],
        data.price.shape[2],
    )


@torch.no_grad()
def predict(
    model: MMAN, data: ModelData, idx: np.ndarray, batch_size: int, device: str
) -> dict[str, np.ndarray]:
    """Capsule lengths, up-scores and credibility weights of the rows ``idx``."""
    model.eval()
    lengths, weights = [], []
    for lo in range(0, len(idx), batch_size):
        out = model(data.batch(idx[lo : lo + batch_size], device))
        lengths.append(out["lengths"].float().cpu())
        if "weights" in out:
            weights.append(out["weights"].float().cpu())
    lens = torch.cat(lengths).numpy() if lengths else np.zeros((0, 2), np.float32)
    res = {"lengths": lens, "score": lens[:, 1] / np.maximum(lens.sum(1), 1e-12), "pred": lens.argmax(1)}
    if weights:
        res["weights"] = torch.cat(weights).numpy()
    return res


def _dev_score(metrics: dict[str, float], select_on: str) -> float:
    return {"dev_mcc": metrics["mcc"], "dev_accuracy": metrics["accuracy"], "last": 0.0}[select_on]


def decision_threshold(dev_scores: np.ndarray, up_fraction: float, rule: str) -> float:
    """Score above which a sample is called up.

    ``argmax``: 0.5 (the longer capsule, or the more probable class). ``base_rate``: the quantile of
    the dev split's scores that calls the training split's fraction of up samples up (dev labels are
    not used); this keeps a model whose scores barely vary from collapsing onto one class.
    """
    if rule == "argmax" or len(dev_scores) == 0:
        return 0.5
    if rule != "base_rate":
        raise ConfigError(f"papers.mman.decision: {rule!r} is unknown; use argmax or base_rate")
    return float(np.quantile(dev_scores, 1.0 - up_fraction))


def up_fraction(data: ModelData) -> float:
    """Fraction of up labels in the training split."""
    return float(data.label[data.rows(0)].float().mean())


def train_variant(
    data: ModelData, cfg: dict[str, Any], variant: str, seed: int, checkpoint_dir: str | Path, device: str
) -> tuple[MMAN, list[dict[str, Any]], int]:
    """Train one variant with one seed; resumable from ``checkpoint_dir/last.pt``.

    Each epoch's sample order comes from ``(seed, epoch)`` and dropout is reseeded per epoch, so a
    resumed run ends with the numbers of an uninterrupted one. After every epoch the dev split is
    scored; the weights of the best epoch (``optim.select_on``) are returned.

    Returns
    -------
    model, history, best_epoch
    """
    optim_cfg = cfg["optim"]
    torch.manual_seed(seed)
    model = build_model(variant, cfg, data).to(device)
    train_idx, dev_idx = data.rows(0), data.rows(1)
    if len(train_idx) == 0 or len(dev_idx) == 0:
        raise ConfigError(
            "papers.mman.splits: the train or dev split has no labelled samples; widen the date ranges"
        )
    bs, epochs = optim_cfg["batch_size"], optim_cfg["epochs"]
    steps_per_epoch = math.ceil(len(train_idx) / bs)
    opt = torch.optim.Adam(model.parameters(), lr=optim_cfg["lr"], weight_decay=optim_cfg["weight_decay"])
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total))
    key = run_key(
        {
            "variant": variant,
            "seed": seed,
            "model": cfg["model"],
            "optim": optim_cfg,
            "loss": cfg["loss"],
            "n": int(data.label.shape[0]),
            "train": len(train_idx),
            "encoder": data.encoder,
        }
    )
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt, hist_path = ckpt_dir / "last.pt", ckpt_dir / "history.jsonl"
    history: list[dict[str, Any]] = []
    start, best = 0, {"score": -math.inf, "epoch": 0, "state": None}
    base_rate = up_fraction(data)
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state.get("key") == key:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            history, start, best = state["history"], state["epoch"] + 1, state["best"]
            log.info("resuming %s seed %d after epoch %d", variant, seed, start)
        else:
            log.warning("ignoring %s: it belongs to another configuration", ckpt)
    with atomic_path(hist_path) as tmp:
        tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
    for epoch in range(start, epochs):
        model.train()
        torch.manual_seed(seed * 1_000_003 + epoch)
        order = np.random.default_rng([seed, epoch]).permutation(train_idx)
        t0, loss_sum = time.perf_counter(), 0.0
        for lo in range(0, len(order), bs):
            batch = data.batch(order[lo : lo + bs], device)
            out = model(batch)
            loss = mman_loss(model, out, batch, cfg["loss"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), optim_cfg["clip_norm"])
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(batch["label"])
        dev = predict(model, data, dev_idx, 4 * bs, device)
        thr = decision_threshold(dev["score"], base_rate, cfg["decision"])
        dev_m = classification_metrics(data.label[dev_idx].numpy(), (dev["score"] > thr).astype(int))
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / len(order),
            "dev_accuracy": dev_m["accuracy"],
            "dev_mcc": dev_m["mcc"],
            "lr": sched.get_last_lr()[0],
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        append_jsonl(hist_path, record)
        score = _dev_score(dev_m, optim_cfg["select_on"])
        if score > best["score"] or optim_cfg["select_on"] == "last":
            best = {
                "score": score,
                "epoch": epoch + 1,
                "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            }
        log.info(
            "%s seed %d epoch %d: %s",
            variant,
            seed,
            epoch + 1,
            {k: round(v, 4) for k, v in record.items() if isinstance(v, float)},
        )
        with atomic_path(ckpt) as tmp:
            torch.save(
                {
                    "key": key,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "history": history,
                    "best": best,
                },
                tmp,
            )
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return model, history, int(best["epoch"])


def evaluation_rows(samples: dict[str, np.ndarray]) -> np.ndarray:
    """Rows every model is scored on: labelled dev and test samples, and the test period's trading days."""
    labelled = (samples["label"] >= 0) & np.isin(samples["split"], (1, 2))
    return np.flatnonzero(labelled | samples["tradable"])


def write_predictions(
    path: str | Path,
    rows: np.ndarray,
    score: np.ndarray,
    pred: np.ndarray,
    extra: dict[str, np.ndarray] | None = None,
) -> None:
    """Predictions of one model and seed on :func:`evaluation_rows` (``score`` = evidence for up)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle, rows=rows, score=score.astype(np.float32), pred=pred.astype(np.int8), **(extra or {})
        )


def run_training(
    corpus_path: str,
    samples_path: str,
    text_path: str,
    cfg: dict[str, Any],
    variant: str,
    seed: int,
    checkpoint_dir: str,
    device_pref: str,
    threads: int,
    out_model: str,
    out_history: str,
    out_predictions: str,
) -> None:
    """The ``mman_train`` rule: train one variant and seed, write weights, history and predictions."""
    from reprolab.core.io import write_json
    from reprolab.core.runtime import choose_device, set_threads
    from reprolab.finance.stocknet import load_corpus, load_samples
    from reprolab.finance.text import load_text_cache

    set_threads(threads)
    device = choose_device(device_pref)
    corpus, samples, text = load_corpus(corpus_path), load_samples(samples_path), load_text_cache(text_path)
    data = make_model_data(corpus, samples, text, cfg["window"]["price_days"])
    t0 = time.perf_counter()
    model, history, best_epoch = train_variant(data, cfg, variant, seed, checkpoint_dir, device)
    seconds = time.perf_counter() - t0
    rows = evaluation_rows(samples)
    res = predict(model, data, rows, 4 * cfg["optim"]["batch_size"], device)
    dev = samples["split"][rows] == 1
    thr = decision_threshold(
        res["score"][dev & (samples["label"][rows] >= 0)], up_fraction(data), cfg["decision"]
    )
    extra = {"pred_argmax": res["pred"].astype(np.int8), "threshold": np.float32(thr)}
    if "weights" in res:
        extra["weights"] = res["weights"]
    write_predictions(out_predictions, rows, res["score"], (res["score"] > thr).astype(np.int8), extra)
    with atomic_path(out_model) as tmp:
        torch.save(
            {
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "variant": variant,
                "seed": seed,
                "model": cfg["model"],
            },
            tmp,
        )
    write_json(
        out_history,
        {
            "model": variant,
            "seed": seed,
            "device": device,
            "best_epoch": best_epoch,
            "train_seconds": seconds,
            "parameters": sum(p.numel() for p in model.parameters()),
            "epochs": history,
        },
    )


# --------------------------------------------------------------------------- baselines

BASELINES: tuple[str, ...] = ("majority", "price_lr", "text_lr", "rf_bow")


def sample_post_matrix(post_ids: np.ndarray, n_columns: int, post_col: np.ndarray) -> Any:
    """Sparse ``[N, n_columns]`` matrix counting, per sample, the posts of each column (``post_col[post]``)."""
    from scipy import sparse

    rows, slots = np.nonzero(post_ids >= 0)
    cols = post_col[post_ids[rows, slots]]
    ok = cols >= 0
    return sparse.csr_matrix((np.ones(ok.sum()), (rows[ok], cols[ok])), shape=(post_ids.shape[0], n_columns))


def bag_of_words(corpus: Corpus, samples: dict[str, np.ndarray], max_features: int, min_df: int) -> Any:
    """Binary bag of words of each sample's posts (vocabulary from training-split posts only)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    used = np.unique(samples["post_ids"][samples["post_ids"] >= 0])
    train_used = np.unique(
        samples["post_ids"][(samples["split"] == 0)][samples["post_ids"][samples["split"] == 0] >= 0]
    )
    vec = CountVectorizer(
        token_pattern=r"[^ ]+", lowercase=False, min_df=min_df, max_features=max_features, binary=True
    )
    vec.fit([corpus.texts[i] for i in train_used])
    x_post = vec.transform([corpus.texts[i] for i in used])
    col = np.full(corpus.n_posts, -1, dtype=np.int64)
    col[used] = np.arange(len(used))
    a = sample_post_matrix(samples["post_ids"], len(used), col)
    x = (a @ x_post).tocsr()
    x.data[:] = 1.0
    return sparse.csr_matrix(x)


def mean_post_embedding(samples: dict[str, np.ndarray], text: dict[str, Any]) -> np.ndarray:
    """Mean cached sentence embedding of each sample's posts ``[N, D]``."""
    a = sample_post_matrix(samples["post_ids"], text["table"].shape[0], text["post_row"].astype(np.int64))
    counts = np.asarray(a.sum(1)).ravel()
    return np.asarray(a @ text["table"].astype(np.float32)) / np.maximum(counts, 1)[:, None]


def fit_baseline(
    name: str,
    corpus: Corpus,
    samples: dict[str, np.ndarray],
    text: dict[str, Any],
    cfg: dict[str, Any],
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit one baseline on the training split and score :func:`evaluation_rows`.

    ``majority``: the training split's majority class. ``price_lr``: logistic regression on the
    standardised price window (days x 7 features). ``text_lr``: logistic regression on the mean
    post embedding (bag of words with the ``dan`` encoder). ``rf_bow``: random forest on a binary
    bag of words of the window's posts (the card's RF row, after Pagolu et al. 2016).

    Returns
    -------
    rows, score, pred
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if name not in BASELINES:
        raise ConfigError(f"papers.mman.baselines: {name!r} is unknown; use {', '.join(BASELINES)}")
    bcfg = cfg["baseline_settings"]
    train = np.flatnonzero((samples["split"] == 0) & (samples["label"] >= 0))
    rows = evaluation_rows(samples)
    y = samples["label"][train]
    if name == "majority":
        up = float(y.mean())
        score = np.full(len(rows), up)
        return rows, score, np.full(len(rows), int(up > 0.5), dtype=np.int8)
    if name == "price_lr":
        x = price_windows(corpus, samples["price_row"], cfg["window"]["price_days"]).reshape(
            len(samples["label"]), -1
        )
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=bcfg["lr_c"], max_iter=2000, random_state=seed)
        model.fit(scaler.transform(x[train]), y)
        score = model.predict_proba(scaler.transform(x[rows]))[:, 1]
    elif name == "text_lr" and text["encoder"] == "minilm":
        x = mean_post_embedding(samples, text)
        model = LogisticRegression(C=bcfg["lr_c"], max_iter=2000, random_state=seed).fit(x[train], y)
        score = model.predict_proba(x[rows])[:, 1]
    else:
        x = bag_of_words(corpus, samples, bcfg["bow_features"], bcfg["bow_min_df"])
        if name == "text_lr":
            model = LogisticRegression(C=bcfg["lr_c"], max_iter=2000, random_state=seed)
        else:
            model = RandomForestClassifier(
                n_estimators=bcfg["rf_trees"],
                min_samples_leaf=bcfg["rf_min_leaf"],
                max_features="sqrt",
                random_state=seed,
                n_jobs=1,
            )
        model.fit(x[train], y)
        score = model.predict_proba(x[rows])[:, 1]
    dev = (samples["split"][rows] == 1) & (samples["label"][rows] >= 0)
    thr = decision_threshold(score[dev], float(y.mean()), cfg["decision"])
    return rows, score, (score > thr).astype(np.int8)


def run_baseline(
    corpus_path: str,
    samples_path: str,
    text_path: str,
    cfg: dict[str, Any],
    name: str,
    seed: int,
    out_predictions: str,
    out_history: str,
) -> None:
    """The ``mman_baseline`` rule: fit one baseline with one seed and write its predictions."""
    from reprolab.core.io import write_json
    from reprolab.core.runtime import seed_everything
    from reprolab.finance.stocknet import load_corpus, load_samples
    from reprolab.finance.text import load_text_cache

    seed_everything(seed)
    corpus, samples, text = load_corpus(corpus_path), load_samples(samples_path), load_text_cache(text_path)
    t0 = time.perf_counter()
    rows, score, pred = fit_baseline(name, corpus, samples, text, cfg, seed)
    write_predictions(out_predictions, rows, score, pred, {"pred_argmax": (score > 0.5).astype(np.int8)})
    write_json(
        out_history, {"model": name, "seed": seed, "train_seconds": time.perf_counter() - t0, "epochs": []}
    )

"""The MMAN model: shapes of every variant, the margin loss, learning a planted signal, resuming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolab.finance import mman
from reprolab.finance.mman import (
    MMAN,
    VARIANTS,
    ModelData,
    TimeEncoding,
    decision_threshold,
    margin_loss,
    predict,
    train_variant,
)

CFG = {
    "model": {
        "hidden": 16,
        "heads": 2,
        "layers": 1,
        "fusion_blocks": 1,
        "dropout": 0.1,
        "word_dim": 8,
        "time_base": 10000.0,
        "price_channels": 4,
        "head_channels": 2,
        "capsule_dim": 4,
    },
    "loss": {"m_plus": 0.9, "m_minus": 0.1, "lambda": 0.5, "recon_weight": 0.0005},
    "optim": {
        "lr": 0.005,
        "weight_decay": 0.0,
        "batch_size": 32,
        "epochs": 6,
        "clip_norm": 5.0,
        "select_on": "dev_mcc",
    },
    "decision": "argmax",
}


def planted_data(n: int = 600, seed: int = 0, encoder: str = "minilm") -> ModelData:
    """Labels planted in the posts: up iff the mean of the first embedding dimension over the window is > 0."""
    g = torch.Generator().manual_seed(seed)
    p, d, w = 6, 8, 8
    table = torch.randn(n * p, d, generator=g)
    post_row = torch.arange(n * p).view(n, p)
    mask = torch.rand(n, p, generator=g) > 0.2
    mask[:, -1] = True
    price = torch.randn(n, w, 7, generator=g)
    emb = table[post_row]
    signal = (emb[..., 0] * mask).sum(1) / mask.sum(1)
    label = (signal > 0).long()
    split = torch.tensor(np.repeat([0, 1, 2], [n * 6 // 10, n * 2 // 10, n - n * 8 // 10]))
    if encoder == "dan":
        # Each post holds word 2 (bullish) or word 3 (bearish) among random words; the label is the majority.
        table = torch.randint(4, 50, (n * p, 5), generator=g)
        bull = torch.rand(n * p, generator=g) < 0.5
        table[:, 0] = torch.where(bull, 2, 3)
        votes = ((bull.view(n, p).float() - 0.5) * mask).sum(1)
        mask[votes == 0, -2] = False
        votes = ((bull.view(n, p).float() - 0.5) * mask).sum(1)
        label = (votes > 0).long()
    return ModelData(
        table=table,
        post_row=post_row,
        mask=mask,
        age=torch.rand(n, p, generator=g) * 300,
        cred=torch.randn(n, p, 8, generator=g),
        price=price,
        label=label,
        split=split,
        encoder=encoder,
        vocab_size=50,
    )


def batch(data: ModelData, n: int = 5) -> dict[str, torch.Tensor]:
    return data.batch(np.arange(n), "cpu")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_gives_capsule_lengths(variant):
    data = planted_data(n=40)
    model = MMAN(variant, CFG["model"], 8, 0, 8, 8)
    out = model(batch(data))
    assert out["lengths"].shape == (5, 2)
    assert ((out["lengths"] >= 0) & (out["lengths"] < 1)).all()
    assert ("weights" in out) == VARIANTS[variant]["credibility"]
    if "weights" in out:
        torch.testing.assert_close(out["weights"].sum(1), torch.ones(5))
        assert (out["weights"][~batch(data)["mask"]] == 0).all()


def test_padding_posts_do_not_change_the_output():
    data = planted_data(n=10)
    model = MMAN("mman", CFG["model"], 8, 0, 8, 8).eval()
    b = batch(data, 3)
    b["mask"][:, :2] = False
    ref = model(b)["lengths"]
    b["posts"][:, :2] = 100.0
    b["cred"][:, :2] = -50.0
    torch.testing.assert_close(model(b)["lengths"], ref)


def test_margin_loss_analytic():
    lengths = torch.tensor([[0.2, 0.95], [0.5, 0.5]])
    label = torch.tensor([1, 0])
    # sample 1: up has 0.95 > 0.9 (no loss), down 0.2 > 0.1 -> 0.5 * 0.1^2; sample 2: (0.9-0.5)^2 + 0.5 * 0.4^2
    expected = (0.5 * 0.01 + 0.16 + 0.5 * 0.16) / 2
    assert float(margin_loss(lengths, label, 0.9, 0.1, 0.5)) == pytest.approx(expected)


def test_time_encoding_is_sinusoidal():
    enc = TimeEncoding(4, base=100.0)
    out = enc(torch.tensor([[0.0, 3.0]]))
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(out[0, 1, :2], torch.tensor([np.sin(3.0), np.cos(3.0)], dtype=torch.float32))
    torch.testing.assert_close(out[0, 1, 2:], torch.tensor([np.sin(0.3), np.cos(0.3)], dtype=torch.float32))


@pytest.mark.parametrize("variant,encoder,epochs", [("mman", "minilm", 6), ("oC", "dan", 10)])
def test_model_learns_a_planted_signal(tmp_path, variant, encoder, epochs):
    data = planted_data(encoder=encoder)
    cfg = {**CFG, "optim": {**CFG["optim"], "epochs": epochs}}
    model, history, best = train_variant(data, cfg, variant, 0, tmp_path / "ckpt", "cpu")
    test = data.rows(2)
    pred = predict(model, data, test, 128, "cpu")["pred"]
    acc = (pred == data.label[test].numpy()).mean()
    majority = max(data.label[test].float().mean().item(), 1 - data.label[test].float().mean().item())
    assert acc > majority + 0.15, (acc, majority, history)
    assert 1 <= best <= epochs


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path, monkeypatch):
    cfg = {**CFG, "optim": {**CFG["optim"], "epochs": 2}}
    data = planted_data(n=200)
    ref, hist_ref, _ = train_variant(data, cfg, "nA", 3, tmp_path / "a", "cpu")
    calls = {"n": 0}
    real_predict = mman.predict

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(mman, "predict", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_variant(data, cfg, "nA", 3, tmp_path / "b", "cpu")
    monkeypatch.setattr(mman, "predict", real_predict)
    resumed, hist, _ = train_variant(data, cfg, "nA", 3, tmp_path / "b", "cpu")
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in hist_ref]
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_base_rate_threshold_calls_the_training_fraction_up():
    scores = np.linspace(0.49, 0.51, 101)
    thr = decision_threshold(scores, 0.3, "base_rate")
    assert (scores > thr).mean() == pytest.approx(0.3, abs=0.02)
    assert decision_threshold(scores, 0.3, "argmax") == 0.5

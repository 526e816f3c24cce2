"""TET experiment plumbing: input normalisation of static images, the TIT plan's budget check."""

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.data.static import CACHE_NORMALIZATION
from reprolab.snn.tet import make_batches
from reprolab.snn.tet_plan import TetPlan

OFFICIAL = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}


def cifar_cache(path, pixels):
    mean, std = (np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in CACHE_NORMALIZATION["cifar10"])
    np.savez(path, images=(pixels - mean) / std, labels=np.arange(len(pixels)) % 10)


def test_cifar_images_are_standardised_with_the_experiments_statistics(tmp_path):
    pixels = np.random.default_rng(0).random((6, 3, 8, 8)).astype(np.float32)
    cifar_cache(tmp_path / "test.npz", pixels)
    exp = {"dataset": "cifar10", "T": 2, "optim": {"batch_size": 6}, "normalize": OFFICIAL}
    x, _ = next(make_batches(exp, tmp_path / "test.npz", train=False).epoch(seed=0, epoch=0))
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (OFFICIAL["mean"], OFFICIAL["std"]))
    expected = (torch.from_numpy(pixels) - mean) / std
    assert x.shape == (2, 6, 3, 8, 8)
    torch.testing.assert_close(x[0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x[1], expected, atol=1e-5, rtol=1e-5)


def test_without_normalize_the_cache_is_used_as_stored(tmp_path):
    pixels = np.random.default_rng(1).random((4, 3, 8, 8)).astype(np.float32)
    cifar_cache(tmp_path / "test.npz", pixels)
    exp = {"dataset": "cifar10", "T": 1, "optim": {"batch_size": 4}}
    x, _ = next(make_batches(exp, tmp_path / "test.npz", train=False).epoch(seed=0, epoch=0))
    stored = np.load(tmp_path / "test.npz")["images"]
    torch.testing.assert_close(x[0], torch.from_numpy(stored))


def test_normalize_is_refused_for_event_frames(tmp_path):
    np.savez(tmp_path / "f.npz", frames=np.zeros((2, 3, 2, 4, 4), np.float32), labels=np.zeros(2))
    exp = {"dataset": "nmnist_demo", "T": 3, "optim": {"batch_size": 2}, "normalize": OFFICIAL}
    with pytest.raises(ConfigError, match="static images only"):
        make_batches(exp, tmp_path / "f.npz", train=False)


def test_tit_plan_needs_an_equal_epoch_budget_and_covers_every_seed():
    exp = {"dataset": "nmnist_demo", "T": 10, "optim": {"epochs": 5}, "eval_T": [10],
           "tit": {"enabled": True, "small_T": 2, "small_epochs": 3, "epochs": 2}}
    plan = TetPlan({"arms": ["sdt", "tet"], "seeds": [1, 2], "experiments": {"e": exp}}, "resources")
    assert plan.tit_runs("history.json") == [f"results/tet/e/tit/{st}_s{s}/history.json" for s in (1, 2)
                                             for st in ("small", "inherit")]
    assert plan.keeps_predictions("e", "tet") and not plan.keeps_predictions("e", "sdt")
    too_long = dict(exp, tit=dict(exp["tit"], epochs=3))
    with pytest.raises(ConfigError, match="exceeds optim.epochs"):
        TetPlan({"arms": ["sdt", "tet"], "seeds": [1], "experiments": {"e": too_long}}, "resources")

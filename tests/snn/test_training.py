from pathlib import Path

import numpy as np
import pytest
import torch

from reprolab.data.frames import events_to_frames
from reprolab.data.nmnist import read_archive
from reprolab.snn.data import ArrayBatches, Augment, Preprocess, Standardize
from reprolab.snn.losses import sdt_loss
from reprolab.snn.models import VGGSNN
from reprolab.snn.training import TrainSpec, evaluate, fit, loss_step

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frames():
    ev = read_archive(REPO / "resources/demo/nmnist-small/train.zip", "train")
    x = events_to_frames(ev, 4, "count")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    return x[idx[:300]], ev.labels[idx[:300]], x[idx[300:400]], ev.labels[idx[300:400]]


def batches(x, y, train):
    return ArrayBatches(x, y, 20, Preprocess(normalize="frame_max"), Augment(roll=1) if train else None, shuffle=train)


def train_once(frames, ckpt, epochs=3, keep_predictions=False):
    torch.manual_seed(0)
    net = VGGSNN(2, 10, 34, [8, 16], [True, True])
    spec = TrainSpec(epochs=epochs, lr=3e-3, batch_size=20, seed=7)
    history = fit(net, batches(*frames[:2], True), batches(*frames[2:], False), loss_step(sdt_loss), spec, ckpt,
                  "cpu", progress=False, keep_predictions=keep_predictions)
    return net, history


def test_small_snn_learns_nmnist_well_above_chance(frames, tmp_path):
    net, history = train_once(frames, tmp_path / "ckpt")
    held_out = evaluate(net, batches(*frames[2:], False), "cpu")["accuracy"]
    # chance is 0.1; with 100 held-out samples 0.3 is about seven binomial standard errors above it
    assert held_out > 0.3, f"held-out accuracy {held_out} should be far above chance (0.1)"
    assert history[-1]["train_loss"] < history[0]["train_loss"]


class Killed(Exception):
    pass


def dying_step(after_batches: int):
    """A training step that raises (like a killed job) after a number of batches."""
    inner, calls = loss_step(sdt_loss), {"n": 0}

    def step(model, x, y, backward):
        calls["n"] += 1
        if calls["n"] > after_batches:
            raise Killed
        return inner(model, x, y, backward)

    return step


def metrics(history):
    return [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second")} for h in history]


def test_run_killed_mid_epoch_resumes_to_the_same_numbers(frames, tmp_path):
    torch.set_num_threads(1)
    _, uninterrupted = train_once(frames, tmp_path / "full", epochs=2)
    ckpt = tmp_path / "killed"
    torch.manual_seed(0)
    net = VGGSNN(2, 10, 34, [8, 16], [True, True])
    spec = TrainSpec(epochs=2, lr=3e-3, batch_size=20, seed=7)
    with pytest.raises(Killed):  # 15 batches per epoch: dies in the middle of epoch 2
        fit(net, batches(*frames[:2], True), batches(*frames[2:], False), dying_step(22), spec, ckpt, "cpu",
            progress=False)
    assert len((ckpt / "history.jsonl").read_text().splitlines()) == 1
    _, resumed = train_once(frames, ckpt, epochs=2)
    assert metrics(resumed) == metrics(uninterrupted)


def test_checkpoint_of_another_configuration_is_not_resumed(frames, tmp_path):
    train_once(frames, tmp_path / "c", epochs=1)
    _, history = train_once(frames, tmp_path / "c", epochs=2)
    assert len(history) == 2 and history[0]["epoch"] == 1


def test_augment_roll_is_a_permutation_of_pixels():
    x = torch.arange(2 * 3 * 2 * 5 * 5, dtype=torch.float32).view(2, 3, 2, 5, 5)
    out = Augment(roll=2)(x, torch.Generator().manual_seed(0))
    for i in range(2):
        assert torch.equal(out[i].flatten().sort().values, x[i].flatten().sort().values)


def test_frame_max_normalisation_scales_each_frame_to_one():
    x = torch.rand(2, 3, 2, 4, 4) * 7
    y = Preprocess(normalize="frame_max")(x)
    torch.testing.assert_close(y.amax(dim=(-3, -2, -1)), torch.ones(2, 3))


def test_fit_keeps_each_epochs_test_predictions_when_asked(frames, tmp_path):
    net, history = train_once(frames, tmp_path / "ckpt", epochs=1, keep_predictions=True)
    final = evaluate(net, batches(*frames[2:], False), "cpu")
    assert history[-1]["test_predictions"] == final["predictions"] and len(final["predictions"]) == 100
    _, plain = train_once(frames, tmp_path / "plain", epochs=1)
    assert "test_predictions" not in plain[-1]


def test_standardize_runs_after_augmentation_so_crop_padding_is_black():
    images = np.full((4, 3, 6, 6), 0.5, np.float32)  # [N, C, H, W] pixels in [0, 1]
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.5)
    data = ArrayBatches(images, np.zeros(4), 4, Preprocess(repeat_T=2), Augment(crop_pad=3), shuffle=True,
                        finalize=Standardize(mean, std))
    x, _ = next(data.epoch(seed=1, epoch=0))  # [T, N, C, H, W]
    values = {round(v, 4) for v in x[:, :, 0].flatten().tolist()}
    # channel 0: pixels (0.5 - 0.4) / 0.2 = 0.5; padding (0 - 0.4) / 0.2 = -2 (not 0, the mean)
    assert values <= {0.5, -2.0} and -2.0 in values
    with pytest.raises(ValueError, match="channel statistics"):
        Standardize((0.5,), (0.2,))(torch.zeros(1, 3, 2, 2))

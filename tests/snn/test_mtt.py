"""MTT: TimeTrans, IAF neuron, staged network, configuration sampling, the MTT step, BN recalibration."""

from pathlib import Path

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.data.frames import events_to_frames
from reprolab.data.nmnist import read_archive
from reprolab.snn.data import ArrayBatches, Preprocess
from reprolab.snn.losses import sdt_loss
from reprolab.snn.mtt import (
    ConfigSampler,
    build_staged,
    deploy_experiment,
    deploy_T,
    iaf_steps,
    mtt_step,
    recalibrate_bn,
    uniform,
)
from reprolab.snn.timetrans import boundaries, time_trans, time_trim, transfer_matrix
from reprolab.snn.training import TrainSpec, evaluate, fit

REPO = Path(__file__).resolve().parents[2]
SMALL = {"stages": [[{"conv": 4, "stride": 2}], [{"conv": 8, "pool": 2}], [{"linear": 16, "pool": 2}]]}


def official_table(in_T, out_T):
    """The official table_spwn, written out as the card describes it (trans_table[t_out] = [t_in])."""
    fewer, more, expand = (in_T, out_T, True) if in_T <= out_T else (out_T, in_T, False)
    table, last = [], 0
    for i in range(fewer):
        nearest = round((i + 1) * more / fewer - 1e-5)
        if expand:
            table += [[i]] * (nearest - last)
        else:
            table.append(list(range(last, nearest)))
        last = nearest
    return table


@pytest.mark.parametrize("T_in", range(1, 13))
@pytest.mark.parametrize("T_out", range(1, 13))
def test_timetrans_matches_the_official_table_including_half_ties(T_in, T_out):
    if T_in == T_out:
        assert np.array_equal(transfer_matrix(T_in, T_out), np.eye(T_in))
        return
    expected = np.zeros((T_out, T_in), dtype=np.float32)
    for t_out, sources in enumerate(official_table(T_in, T_out)):
        expected[t_out, sources] = 1
    assert np.array_equal(transfer_matrix(T_in, T_out), expected)


def test_half_tie_rounds_down_like_the_official_code():
    # 2 -> 5: 5/2 = 2.5 rounds to 2 (Python's round(2.5) is also 2, but 3 -> 9 at 1.5 shows "down")
    assert boundaries(2, 5).tolist() == [0, 2, 5]
    assert boundaries(2, 3).tolist() == [0, 1, 3]  # 1.5 -> 1, where round-half-even would give 2


def test_compressing_sums_and_expanding_copies():
    x = torch.arange(1, 7, dtype=torch.float32).view(6, 1, 1)
    down = time_trans(x, 3)
    assert down.flatten().tolist() == [3.0, 7.0, 11.0]  # sums, values above 1 are kept
    assert float(down.sum()) == float(x.sum())
    up = time_trans(torch.tensor([1.0, 2.0]).view(2, 1), 4)
    assert up.flatten().tolist() == [1.0, 1.0, 2.0, 2.0]
    assert time_trim(x, 2).flatten().tolist() == [1.0, 2.0]
    with pytest.raises(ConfigError):
        time_trans(x, 3, mode=1)


def test_timetrans_passes_gradients_like_copy_and_sum():
    x = torch.ones(5, 2, requires_grad=True)
    time_trans(x, 2).sum().backward()
    assert torch.equal(x.grad, torch.ones(5, 2))  # every input step lands in exactly one output step


def test_iaf_multi_spike_subtract_reset_and_clip():
    x = torch.tensor([0.25] * 10).view(10, 1)  # exact in binary
    spikes, v = iaf_steps(x)
    assert spikes.flatten().nonzero().flatten().tolist() == [3, 7]  # v reaches the threshold 1 at steps 4 and 8
    assert float(v) == 0.5
    spikes, v = iaf_steps(torch.tensor([[2.5], [-3.0], [0.4]]))
    assert spikes.flatten().tolist() == [2.0, 0.0, 0.0]  # two spikes at once, 0.5 left
    assert abs(float(v) - (-0.6)) < 1e-6  # 0.5 - 3 clipped to -1, then + 0.4


def test_sampler_is_deterministic_in_range_and_groups_stages():
    s = ConfigSampler(num_stages=5, min_T=2, max_T=6, group=2, seed=3)
    draws = [s.draw(b, k) for b in range(50) for k in range(3)]
    assert draws == [s.draw(b, k) for b in range(50) for k in range(3)]
    flat = np.array(draws)
    assert flat.min() == 2 and flat.max() == 6
    assert np.all(flat[:, 0] == flat[:, 1]) and np.all(flat[:, 2] == flat[:, 3])
    assert len({tuple(d) for d in draws}) > 50
    with pytest.raises(ConfigError):
        ConfigSampler(3, 4, 2)


def test_deploy_resolution_defaults_to_the_training_range_and_is_validated():
    exp = {"min_T": 1, "max_T": 10}
    assert deploy_T(exp) == (1, 10)
    assert deploy_T(dict(exp, deploy={"T": 40})) == (1, 40)
    ft = deploy_experiment(dict(exp, deploy={"T": 40, "min_T": 5, "base": "sdt"}))
    assert (ft["min_T"], ft["max_T"]) == (5, 40)
    for bad in ({"T": 4, "min_T": 5}, {"base": "mtt"}):
        with pytest.raises(ConfigError):
            deploy_T(dict(exp, deploy=bad))


def frames_labels(n_train=240, n_test=100, T=4):
    ev = read_archive(REPO / "resources/demo/nmnist-small/train.zip", "train")
    x = events_to_frames(ev, T, "time")
    idx = np.random.default_rng(0).permutation(len(x))
    return x[idx[:n_train]], ev.labels[idx[:n_train]], x[idx[n_train:n_train + n_test]], ev.labels[idx[n_train:n_train + n_test]]


@pytest.fixture(scope="module")
def data():
    return frames_labels()


def test_mtt_step_backpropagates_the_sum_of_the_s_losses(data):
    torch.manual_seed(0)
    model = build_staged(SMALL, 2, 10, 34)
    x = torch.from_numpy(data[0][:6]).float().transpose(0, 1)
    y = torch.from_numpy(data[1][:6])
    sampler = ConfigSampler(model.num_stages, 1, 4, seed=1)
    grads = []
    step = mtt_step(sampler, 3, eval_T=4, first_batch=lambda: 0)
    step(model, x, y, lambda loss: loss.backward())
    grads.append([p.grad.clone() for p in model.parameters()])
    assert model.config == uniform(model, 4)  # left at the evaluation configuration
    model.zero_grad()
    total = sum(sdt_loss(model_at(model, sampler.draw(0, k))(x), y) for k in range(3))
    total.backward()
    for g_step, p in zip(grads[0], model.parameters(), strict=True):
        torch.testing.assert_close(g_step, p.grad, rtol=1e-5, atol=1e-6)


def model_at(model, config):
    model.set_config(config)
    return model


def test_stages_run_at_their_own_time_steps(data):
    model = build_staged(SMALL, 2, 10, 34)
    x = torch.from_numpy(data[0][:2]).float().transpose(0, 1)
    model.set_config([3, 1, 5])
    assert model(x).shape == (5, 2, 10)
    with pytest.raises(ConfigError):
        model.set_config([3, 1])


def test_bn_recalibration_gives_the_cumulative_average_of_calibration_batches(data):
    torch.manual_seed(0)
    model = build_staged(SMALL, 2, 10, 34)
    batches = ArrayBatches(data[0][:60], data[1][:60], 20, Preprocess(), shuffle=True)
    model.set_config([2, 2, 2])
    recalibrate_bn(model, batches, n_batches=2, device="cpu")
    assert not model.training
    bn = model.batch_norms()[0]
    seen = []
    hook = model.stages[0][0].synapse.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        for i, (x, _) in enumerate(batches.epoch(seed=0, epoch=0)):
            if i >= 2:
                break
            model(x)
    hook.remove()
    expected = torch.stack([s.mean((0, 2, 3)) for s in seen]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1  # restored for later training


def test_mtt_learns_nmnist_well_above_chance(data, tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = {"stages": [[{"conv": 8, "stride": 2}], [{"conv": 16, "pool": 2}], [{"linear": 32, "pool": 2}]]}
    model = build_staged(spec, 2, 10, 34)
    train = ArrayBatches(data[0], data[1], 20, Preprocess(), shuffle=True)
    test = ArrayBatches(data[2], data[3], 50, Preprocess())
    step = mtt_step(ConfigSampler(model.num_stages, 1, 4, seed=2), 3, 4, lambda: 0)
    fit(model, train, None, step, TrainSpec(epochs=3, lr=3e-3, batch_size=20, seed=1), tmp_path, "cpu", progress=False)
    model.set_config([4, 4, 4])
    recalibrate_bn(model, ArrayBatches(data[0], data[1], 20, Preprocess(), shuffle=True), 5, "cpu")
    held_out = evaluate(model, test, "cpu")["accuracy"]
    # chance is 0.1; with 100 held-out samples 0.3 is over six binomial standard errors above it
    assert held_out > 0.3, f"held-out accuracy {held_out}"


class Killed(Exception):
    pass


def test_killed_mtt_run_resumes_to_the_same_numbers(data, tmp_path):
    """Configurations are keyed by the global batch index, so a resumed run draws what an uninterrupted one would."""
    from reprolab.snn.mtt import completed_batches

    torch.set_num_threads(1)
    train = ArrayBatches(data[0][:60], data[1][:60], 20, Preprocess(), shuffle=True)
    spec = TrainSpec(epochs=2, lr=3e-3, batch_size=20, seed=4)

    def run(ckpt, die_after=None):
        torch.manual_seed(0)
        model = build_staged(SMALL, 2, 10, 34)
        inner = mtt_step(ConfigSampler(model.num_stages, 1, 4, seed=9), 2, 4, lambda: completed_batches(ckpt, len(train)))
        calls = {"n": 0}

        def step(m, x, y, backward):
            calls["n"] += 1
            if die_after is not None and calls["n"] > die_after:
                raise Killed
            return inner(m, x, y, backward)

        return fit(model, train, None, step, spec, ckpt, "cpu", progress=False), model

    full, full_model = run(tmp_path / "full")
    with pytest.raises(Killed):  # 3 batches per epoch: dies inside epoch 2
        run(tmp_path / "killed", die_after=4)
    resumed, resumed_model = run(tmp_path / "killed")
    strip = [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second")} for h in full]
    assert [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second")} for h in resumed] == strip
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_staged_network_keeps_pytorch_default_initialisation():
    # The official event-driven models re-initialise nothing; Kaiming fan-out on the classifier (10 outputs)
    # would give std sqrt(2/10) = 0.45, far beyond the default bound 1/sqrt(fan_in).
    torch.manual_seed(0)
    spec = {"stages": [[{"conv": 16, "stride": 2}], [{"conv": 32, "pool": 2}], [{"linear": 64}]]}
    model = build_staged(spec, in_channels=2, num_classes=10, input_size=34)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 4
    for m in layers:
        bound = 1.0 / m.weight[0].numel() ** 0.5
        assert m.weight.abs().max() <= bound
        assert m.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.2)

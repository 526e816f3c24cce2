"""Unit tests of the SD-Conv layers, counts, sparse export and training step (reprolab.vision)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reprolab.core.errors import ConfigError
from reprolab.vision import check_settings, parse_run, run_name, run_names
from reprolab.vision.backbones import build_backbone
from reprolab.vision.flops import conv_madds, count_madds, dynamic_conv_madds
from reprolab.vision.sdconv import (
    ConvSpec,
    DynamicConv2d,
    FolderBatches,
    MaskSpec,
    ThresholdMask,
    binary_step,
    export_sparse,
    flop_check,
    layer_sparsity,
    load_sparse_into,
    long_tailed_grad,
    masked_kernel_density,
    parameter_counts,
    set_temperature,
    sparsity_penalty,
    stored_counts,
    temperature_at,
    threshold_masks,
    train_run,
)

torch.set_num_threads(1)

SMALL = {"arch": "small_cnn", "channels": [4, 8, 8], "pool_after": [False, True]}
TEMP = {"start": 30.0, "end": 1.0, "anneal_epochs": 2}


def test_long_tailed_estimator_follows_the_card():
    x = torch.tensor([-1.5, -1.0, -0.7, -0.4, -0.1, 0.0, 0.25, 0.4, 0.41, 1.0, 1.01])
    expected = torch.tensor([0.0, 0.4, 0.4, 0.4, 1.6, 2.0, 1.0, 0.4, 0.4, 0.4, 0.0])
    assert torch.allclose(long_tailed_grad(x), expected)
    x.requires_grad_(True)
    binary_step(x).sum().backward()
    assert torch.allclose(x.grad, expected)
    assert torch.equal(binary_step(torch.tensor([-0.1, 0.0, 0.1])), torch.tensor([0.0, 0.0, 1.0]))


def test_mask_gradient_reaches_weights_through_abs_and_thresholds_with_minus_sign():
    torch.manual_seed(0)
    w = (torch.randn(3, 2, 3, 3) * 0.3).requires_grad_(True)
    mask = ThresholdMask((3,), MaskSpec(reset_keep_ratio=0.0))
    with torch.no_grad():
        mask.threshold.copy_(torch.tensor([0.1, 0.2, 0.3]))
    upstream = torch.randn(3, 2, 3, 3)
    (mask(w) * upstream).sum().backward()
    t = mask.threshold.detach().view(3, 1, 1, 1)
    z = w.detach().abs() - t
    step, g = (z > 0).float(), long_tailed_grad(z)
    # d/dW [W S(|W| - t)] = S + W g sign(W); d/dt = -W g
    expected_w = upstream * (step + w.detach() * g * torch.sign(w.detach()))
    expected_t = -(upstream * w.detach() * g).sum(dim=(1, 2, 3))
    assert torch.allclose(w.grad, expected_w, atol=1e-6)
    assert torch.allclose(mask.threshold.grad, expected_t, atol=1e-6)


def test_safety_reset_sets_thresholds_to_zero_in_training_only():
    w = torch.full((4, 3, 3, 3), 0.05)
    mask = ThresholdMask((4,), MaskSpec(reset_keep_ratio=0.01))
    with torch.no_grad():
        mask.threshold.fill_(1.0)  # removes every weight
    mask.eval()
    assert float(mask(w).detach().abs().sum()) == 0.0 and int(mask.resets) == 0
    mask.train()
    out = mask(w)
    assert int(mask.resets) == 1 and torch.all(mask.threshold == 0)
    assert torch.equal(out, w)


@pytest.mark.parametrize("groups", [1, 4])
def test_dynamic_conv_with_identical_kernels_equals_static_conv(groups):
    torch.manual_seed(1)
    layer = DynamicConv2d(8, 12, 3, stride=2, padding=1, groups=groups, bias=True, K=4)
    with torch.no_grad():
        layer.weight.copy_(layer.weight[0:1].expand_as(layer.weight))
        layer.bias.copy_(layer.bias[0:1].expand_as(layer.bias) + 0.3)
        layer.attention.fc2.weight.normal_()  # non-uniform attention: the result must not depend on it
    set_temperature(layer, 1.0)
    x = torch.randn(5, 8, 9, 9)
    expected = F.conv2d(x, layer.weight[0], layer.bias[0], stride=2, padding=1, groups=groups)
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_dynamic_conv_mixes_kernels_per_sample_by_attention():
    torch.manual_seed(2)
    layer = DynamicConv2d(3, 4, 3, padding=1, bias=False, K=2)
    x = torch.randn(2, 3, 6, 6)
    pi = layer.attention(x, layer.temperature)
    assert torch.allclose(pi.sum(1), torch.ones(2))
    for n in range(2):
        w = pi[n, 0] * layer.weight[0] + pi[n, 1] * layer.weight[1]
        assert torch.allclose(layer(x)[n], F.conv2d(x[n:n + 1], w, padding=1)[0], atol=1e-5)


def test_temperature_schedule_is_linear_then_flat():
    assert temperature_at(0, 30, 1, 10) == 30
    assert temperature_at(5, 30, 1, 10) == pytest.approx(15.5)
    assert temperature_at(10, 30, 1, 10) == 1 and temperature_at(50, 30, 1, 10) == 1
    assert temperature_at(0, 30, 1, 0) == 1


def test_penalty_is_sum_of_exp_minus_thresholds():
    net = build_backbone(SMALL, ConvSpec("sdconv"), 1, 10)
    n_thresholds = sum(m.threshold.numel() for m in threshold_masks(net))
    assert n_thresholds == 2 * 4 * 8  # two SD-Conv layers, K=4 kernels x 8 filters
    assert float(sparsity_penalty(net).detach()) == pytest.approx(n_thresholds)  # t = 0 -> exp(0) = 1 each
    assert float(sparsity_penalty(build_backbone(SMALL, ConvSpec("dynamic"), 1, 10))) == 0.0


def test_parameter_counts_of_masked_kernels_use_kept_weights():
    net = build_backbone(SMALL, ConvSpec("masked"), 1, 10)
    counts = parameter_counts(net)
    # stem 1*4*9, BN 3*(2*c), masked kernels 4*8*9 + 8*8*9, classifier 8*10+10; thresholds excluded
    assert counts["dense"] == 36 + 2 * (4 + 8 + 8) + (288 + 576) + 90
    assert counts["kernel_dense"] == 864 and counts["nonzero"] == counts["dense"]
    with torch.no_grad():
        for m in threshold_masks(net):
            m.threshold.fill_(10.0)
    after = parameter_counts(net)
    assert after["kernel_nonzero"] == 0 and after["nonzero"] == counts["dense"] - 864
    assert all(row["sparsity"] == 1.0 for row in layer_sparsity(net))


def test_multiply_adds_match_hand_count_on_tiny_layers(tmp_path):
    layer = DynamicConv2d(4, 6, 3, stride=2, padding=1, bias=False, K=4)
    # out 5x5: conv 25*6*4*9; attention hidden int(4*0.25)+1 = 2: 4*2 + 2*4; aggregation 4*(6*4*9)
    assert dynamic_conv_madds(layer, (5, 5)) == {"attention": 16, "aggregation": 864, "conv": 5400}
    counted = count_madds(layer, (4, 9, 9))
    assert counted["layers"][""]["conv"] == 5400 and counted["layers"][""]["aggregation"] == 864
    assert counted["layers"][""]["attention"] == 16 and counted["dense"] == 5400 + 864 + 16
    assert conv_madds((7, 7), 3, 5, 3) == 49 * 5 * 27
    settings = dict(_settings(), arms=["static", "dynamic"],
                    experiments={"d": {"dataset": "digits", "model": SMALL, "optim": _exp()["optim"]}})
    checked = flop_check(tmp_path / "check.json", settings)
    assert checked["all_match"]
    arms = checked["architectures"]["d"]["arms"]
    # same convolutions; DY-Conv adds its attention and aggregation terms
    extra = sum(t["attention"] + t["aggregation"] for t in arms["dynamic"]["layers"].values())
    assert extra > 0 and arms["dynamic"]["dense"] == arms["static"]["dense"] + extra


def test_sparse_multiply_adds_count_only_kept_weights():
    layer = DynamicConv2d(4, 6, 3, padding=1, bias=False, K=2, mask=MaskSpec())
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.weight[0, :3] = 0.01  # below the threshold: kernel 0 loses filters 0-2
        layer.weight[1] = 0.01  # kernel 1 loses everything
        layer.mask.threshold.fill_(0.1)
    counted = count_madds(layer, (4, 6, 6))["layers"][""]
    kept = 3 * 4 * 9  # kernel 0, filters 3-5
    assert counted["sparse_aggregation"] == kept
    assert counted["sparse_conv"] == counted["conv"] // 2  # union of masks: half of the filters


@pytest.mark.parametrize("kind", ["masked", "sdconv"])
def test_sparse_inference_equals_dense_masked_model_with_fewer_stored_parameters(kind, tmp_path):
    torch.manual_seed(3)
    model = build_backbone(SMALL, ConvSpec(kind), 1, 10).eval()
    with torch.no_grad():
        for m in threshold_masks(model):
            m.threshold.uniform_(0.1, 0.4)
    x = torch.rand(6, 1, 8, 8)
    export = export_sparse(model)
    torch.save(export, tmp_path / "sparse.pt")
    loaded = torch.load(tmp_path / "sparse.pt", weights_only=False)
    sparse_model = load_sparse_into(build_backbone(SMALL, ConvSpec(kind), 1, 10), loaded)
    assert torch.allclose(sparse_model(x), model(x), atol=1e-5)
    names = {n for n, _ in model.named_parameters() if not n.endswith("threshold")}
    stored = stored_counts(loaded, names)
    counts = parameter_counts(model)
    assert stored["stored_parameters"] == counts["nonzero"] < counts["dense"]


def test_run_names_round_trip_and_settings_checks():
    assert run_name("sdconv", 1e-5) == "sdconv_a1e-05" and parse_run("sdconv_a1e-05") == ("sdconv", 1e-5)
    assert parse_run("static") == ("static", None)
    settings = {"arms": ["static", "sdconv"], "alphas": {"sdconv": [1e-4, 1e-3]}, "chosen_alpha": 1e-3,
                "init_from": "scratch", "experiments": {"d": {"dataset": "digits", "model": SMALL}}}
    assert run_names(settings) == ["static", "sdconv_a0.0001", "sdconv_a0.001"]
    check_settings(settings)
    with pytest.raises(ConfigError, match="chosen_alpha"):
        check_settings(dict(settings, chosen_alpha=0.5))
    check_settings(dict(settings, chosen_alpha="validation"))
    with pytest.raises(ConfigError, match="pool_after"):
        check_settings(dict(settings, experiments={"d": {"dataset": "digits", "model": dict(SMALL, pool_after=[True])}}))
    with pytest.raises(ConfigError, match="unknown arm"):
        parse_run("wide_a0.1")


@pytest.mark.parametrize("arch", ["resnet18", "mobilenetv2"])
@pytest.mark.parametrize("kind", ["static", "sdconv"])
def test_paper_backbones_run_with_every_kind(arch, kind):
    net = build_backbone({"arch": arch, "stem": "cifar", "width_mult": 0.25}, ConvSpec(kind), 3, 100).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 2, 3, 32, 32))  # time-major [T=1, N, C, H, W]
    assert out.shape == (1, 2, 100)
    if kind == "sdconv":
        assert len(list(threshold_masks(net))) > 10


def test_folder_batches_are_time_major_and_reproducible():
    ds = torch.utils.data.TensorDataset(torch.rand(10, 3, 4, 4), torch.arange(10))
    batches = FolderBatches(ds, 4, shuffle=True)
    first = [y.tolist() for _, y in batches.epoch(7, 0)]
    assert first == [y.tolist() for _, y in batches.epoch(7, 0)] != [y.tolist() for _, y in batches.epoch(7, 1)]
    x, _ = next(batches.epoch(7, 0))
    assert x.shape == (1, 4, 3, 4, 4) and len(batches) == 3


# --- learning on real data (scikit-learn digits), a few seconds ------------------------------

@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from reprolab.data.static import digits_split, save_images

    root = tmp_path_factory.mktemp("digits")
    for split, (x, y) in digits_split().items():
        save_images(root / f"{split}.npz", x, y)
    return root


def _split(digits, exp, tmp_path):
    """The validation split of the experiment's (limited) training file, as the DAG's sdconv_split writes it."""
    from reprolab.vision.validation import read_split, run_split

    path = tmp_path / "split.json"
    run_split(exp, {"validation": {"fraction": 0.2, "seed": 0}}, str(digits / "train.npz"), str(path))
    return read_split(path)


def _settings():
    return {"arms": [], "dynamic": {"K": 4, "ratio": 0.25, "temperature": TEMP},
            "mask": {"threshold_per": "kernel", "reset_keep_ratio": 0.01, "init": 0.0}}


def _exp(epochs=4):
    return {"dataset": "digits", "limit": {"train": 600, "test": 200},
            "model": {"arch": "small_cnn", "channels": [8, 16, 16], "pool_after": [False, True]},
            "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "epochs": epochs,
                      "batch_size": 50}}


def test_raising_alpha_raises_sparsity_while_the_network_learns(digits, tmp_path):
    results = {}
    split = _split(digits, _exp(), tmp_path)
    for alpha in (1e-5, 5e-3):
        model, history = train_run(_exp(), _settings(), run_name("sdconv", alpha), 0, digits / "train.npz",
                                   split, tmp_path / f"ck{alpha}", "cpu", progress=False)
        results[alpha] = (1 - masked_kernel_density(model), history[-1]["test_accuracy"], model)
    low, high = results[1e-5], results[5e-3]
    print(f"sparsity/accuracy: alpha 1e-5 {low[0]:.3f}/{low[1]:.3f}, alpha 5e-3 {high[0]:.3f}/{high[1]:.3f}")
    assert high[0] > low[0] + 0.2, f"sparsity {high[0]:.2f} (alpha 5e-3) vs {low[0]:.2f} (alpha 1e-5)"
    # validation accuracy (120 digits held out of the 600): chance is 0.1, 0.5 is about 14 standard errors above
    assert low[1] > 0.5 and high[1] > 0.5, f"accuracies {low[1]:.2f}, {high[1]:.2f}"
    log = high[2].train_log
    assert torch.all(log.density[1:] <= log.density[:-1] + 0.05)  # sparsity grows over epochs
    assert log.temperature.tolist() == [30.0, 15.5, 1.0, 1.0]


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_model(digits, tmp_path, monkeypatch):
    import reprolab.vision.sdconv as sd

    exp = _exp(epochs=3)
    run = run_name("sdconv", 1e-3)
    split = _split(digits, exp, tmp_path)
    ref, ref_hist = train_run(exp, _settings(), run, 5, digits / "train.npz", split,
                              tmp_path / "ref", "cpu", progress=False)
    real_step, calls = sd.sdconv_step, {"n": 0}

    def dying(*args, **kwargs):
        inner = real_step(*args, **kwargs)

        def step(model, x, y, backward):
            calls["n"] += 1
            if calls["n"] > 14:  # dies during epoch 2 (10 batches an epoch)
                raise Killed
            return inner(model, x, y, backward)

        return step

    monkeypatch.setattr(sd, "sdconv_step", dying)
    with pytest.raises(Killed):
        train_run(exp, _settings(), run, 5, digits / "train.npz", split, tmp_path / "cut", "cpu",
                  progress=False)
    monkeypatch.setattr(sd, "sdconv_step", real_step)
    resumed, hist = train_run(exp, _settings(), run, 5, digits / "train.npz", split,
                              tmp_path / "cut", "cpu", progress=False)
    strip = [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second")} for h in hist]
    assert strip == [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second")} for h in ref_hist]
    for (k, a), (_, b) in zip(ref.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.allclose(a.float(), b.float(), equal_nan=True), k


def test_plan_lays_out_runs_data_and_dynamic_initialisation():
    from reprolab.vision import SdconvPlan

    settings = {"arms": ["dynamic", "sdconv"], "alphas": {"sdconv": [1e-4]}, "chosen_alpha": 1e-4, "seeds": [1, 2],
                "init_from": "dynamic",
                "experiments": {"d": {"dataset": "digits", "model": SMALL},
                                "n": {"dataset": "nmnist_demo", "model": SMALL},
                                "i": {"dataset": "imagenet", "model": {"arch": "resnet18", "stem": "imagenet"}}}}
    plan = SdconvPlan(settings, "res")
    assert plan.split_file("d", "test") == "res/static/digits/test.npz"
    assert plan.split_file("n", "train") == "res/frames/nmnist_demo/train_T1_count.npz"
    assert plan.split_file("i", "train") == plan.split_file("i", "test") == "res/imagenet/prepared.json"
    assert len(plan.paths("eval.json")) == 3 * 2 * 2 and "results/sdconv/d/sdconv_a0.0001_s2/eval.json" in plan.paths(
        "eval.json")
    assert plan.init_model("d", "sdconv_a0.0001", 2) == {"init": "results/sdconv/d/dynamic_s2/model.pt"}
    # the alpha choice reads DY-Conv and SD-Conv validation results; test evaluation waits for it
    assert plan.selection_histories("d") == [f"results/sdconv/d/{r}_s{s}/history.json"
                                             for r in ("dynamic", "sdconv_a0.0001") for s in (1, 2)]
    assert plan.selection_input("d") == {"selection": "results/sdconv/d/alpha_selection.json"}
    assert plan.split_path("d") == "results/sdconv/d/validation_split.json" and len(plan.selections()) == 3
    assert plan.init_model("d", "dynamic", 2) == {}
    import re

    assert re.fullmatch(plan.run_pattern(), "sdconv_a0.0001") and not re.fullmatch(plan.run_pattern(), "sdconv_a0x0001")

"""Unit tests of ANN-to-SNN conversion and calibration (reprolab.snn.calib, reprolab.snn.ann)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError, DataError
from reprolab.snn import calib as C
from reprolab.snn.ann import VGG, ResNet20, build_ann, units_of
from tests.snn.nets import bn_statistics_of


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, as after training."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.2)
    return model.eval()


def _tiny_vgg() -> VGG:
    torch.manual_seed(0)
    return _randomise_bn(VGG(1, 10, 8, [6, "A", 8, 8, "A"]))


def _tiny_resnet() -> ResNet20:
    torch.manual_seed(0)
    return _randomise_bn(ResNet20(1, 10, channels=[4, 6], blocks=[1, 1]))


# ----------------------------------------------------------------------------- neuron


@pytest.mark.parametrize("T", [4, 16, 32])
@pytest.mark.parametrize("shift", [False, True])
def test_if_rate_under_constant_input_equals_clip_floor(T: int, shift: bool) -> None:
    V = torch.tensor(0.8)
    x = torch.linspace(-0.5, 1.5, 2001) * V  # below 0, inside [0, V] and above V (clipping)
    scaled = x / V * T + (0.5 if shift else 0.0)
    away_from_steps = (scaled - scaled.round()).abs() > 1e-3  # float summation order differs only on the steps
    neuron = C.IFNeuron(V, T, shift)
    neuron.n_batch = len(x)
    rate = neuron(x).view(T, -1).mean(0)
    expected = C.clip_floor(x, T, V, shift)
    torch.testing.assert_close(rate[away_from_steps], expected[away_from_steps])
    # and the card's closed form without the shift: clip((V/T) floor(T x / V), 0, V)
    if not shift:
        closed = torch.clamp(V / T * torch.floor(T * x / V), 0, V)
        torch.testing.assert_close(rate[away_from_steps], closed[away_from_steps])


def test_if_spikes_have_amplitude_threshold_and_reset_by_subtraction() -> None:
    neuron = C.IFNeuron(torch.tensor(2.0), T=4, shift=False)
    neuron.n_batch = 1
    out = neuron(torch.tensor([[1.5]])).view(4)
    # v: 1.5 -> 3.0 spike (v=1.0) -> 2.5 spike (0.5) -> 2.0 spike (0.0) -> 1.5
    torch.testing.assert_close(out, torch.tensor([0.0, 2.0, 2.0, 2.0]))


def test_initial_potential_adds_to_the_first_step() -> None:
    neuron = C.IFNeuron(torch.tensor(1.0), T=2, shift=False)
    neuron.n_batch = 1
    neuron.v_init = torch.tensor([0.6])
    torch.testing.assert_close(neuron(torch.tensor([[0.5]])).view(2), torch.tensor([1.0, 0.0]))


# ----------------------------------------------------------------------------- folding, conversion


@pytest.mark.parametrize("make", [_tiny_vgg, _tiny_resnet])
def test_batch_norm_folding_leaves_outputs_unchanged(make) -> None:
    net = make()
    x = torch.rand(16, 1, 8, 8)
    folded = C.fold_batch_norm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)


def test_first_layer_of_the_snn_is_the_clip_floor_of_its_current() -> None:
    folded = C.fold_batch_norm(_tiny_vgg())
    units = C.convertible_units(folded)
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        z = units[0].synapse(x)
    thresholds = [torch.tensor(0.7)] * len(units)
    snn = C.convert(folded, thresholds, T=8, shift=True)
    s = C.record_units(snn, snn.spiking_units()[:1], x, T=8)[0].output
    scaled = z / 0.7 * 8 + 0.5
    ok = (scaled - scaled.round()).abs() > 1e-3
    torch.testing.assert_close(s[ok], C.clip_floor(z, 8, torch.tensor(0.7), True)[ok])


@pytest.mark.parametrize("make", [_tiny_vgg, _tiny_resnet])
def test_snn_approaches_the_ann_for_long_simulations(make) -> None:
    folded = C.fold_batch_norm(make())
    x = torch.rand(32, 1, 8, 8)
    units = C.convertible_units(folded)
    ths = C.scan_thresholds(folded, units, [x], [256])
    with torch.no_grad():
        ann = folded(x)
        snn = C.convert(folded, ths.max, T=256)(x) / 256
    assert (snn - ann).abs().mean() < 0.05 * ann.abs().mean() + 1e-3


def test_linear_pooling_keeps_pool_units_analog() -> None:
    folded = C.fold_batch_norm(_tiny_vgg())
    assert len(C.convertible_units(folded, spiking_pool=False)) == 3
    assert len(C.convertible_units(folded, spiking_pool=True)) == 5
    assert C.convertible_units(folded) == C.convertible_units(folded, spiking_pool=False)  # the default


def test_default_conversion_pools_spikes_linearly_like_the_official_avgpool2d() -> None:
    """The official models pool with nn.AvgPool2d, which conversion leaves linear: at every step the
    pooling unit's output is the 2x2 average of the previous layer's spikes, with no neuron."""
    import yaml

    folded = C.fold_batch_norm(_tiny_vgg())
    x = torch.rand(4, 1, 8, 8)
    T = 8
    ths = C.scan_thresholds(folded, C.convertible_units(folded), [x], [T])
    snn = C.convert(folded, ths.mse[T], T)
    pool = next(u for u in units_of(snn.net) if u.pooling)
    assert not isinstance(pool.act, C.IFNeuron)
    seen = {}
    pool.register_forward_hook(lambda m, args, out: seen.update(inp=args[0], out=out))
    with torch.no_grad():
        snn(x)
    assert seen["inp"].shape[0] == T * 4  # spikes of every step
    torch.testing.assert_close(seen["out"], torch.nn.functional.avg_pool2d(seen["inp"], 2))
    # and the shipped configuration uses it
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((root / "config/papers/calib.yaml").read_text())["papers"]["calib"]
    assert cfg["conversion"]["pool"] == "linear" and "none" in cfg["pool_variant"]


def test_pool_variant_settings_flip_the_pooling_and_keep_the_named_pipelines() -> None:
    settings = {"conversion": {"shift": True, "pool": "linear", "channel_wise": False},
                "pipelines": {"none": ["threshold_max"], "light": ["threshold_mse", "bias"]},
                "pool_variant": ["none"]}
    var = C.pool_variant_settings(settings)
    assert var["conversion"]["pool"] == "spiking" and list(var["pipelines"]) == ["none"]
    assert C.pool_variant_settings({**settings, "pool_variant": []}) is None
    ths = C.ThresholdSet(max=[torch.tensor(1.0), torch.tensor(2.0)], mse={4: [torch.tensor(3.0), torch.tensor(4.0)]})
    sub = ths.subset([False, True])
    assert [float(v) for v in sub.max] == [2.0] and [float(v) for v in sub.mse[4]] == [4.0]


# ----------------------------------------------------------------------------- thresholds


def _brute_force_threshold(a: torch.Tensor, T: int, shift: bool) -> float:
    a = a.double().flatten()
    peak = float(a.max())
    errors = [float((C.clip_floor(a, T, peak * (1 - 0.01 * i), shift) - a).pow(2).sum()) for i in range(95)]
    return peak * (1 - 0.01 * int(np.argmin(errors)))


@pytest.mark.parametrize("shift", [False, True])
def test_mse_threshold_matches_a_brute_force_scan_and_beats_max(shift: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    a = torch.relu(torch.randn(64, 4, 5, 5, generator=gen)) ** 2  # heavy tail: max is an outlier
    V = C.mse_threshold(a, T=8, shift=shift)
    assert float(V) == pytest.approx(_brute_force_threshold(a, 8, shift), rel=1e-5)
    err = lambda v: float((C.clip_floor(a, 8, v, shift) - a).pow(2).sum())
    assert err(V) < err(C.max_threshold(a))
    per_channel = C.mse_threshold(a, T=8, shift=shift, channel_wise=True)
    assert per_channel.shape == (4,)
    assert float(per_channel[2]) == pytest.approx(_brute_force_threshold(a[:, 2], 8, shift), rel=1e-5)


def test_threshold_ema_over_batches() -> None:
    folded = C.fold_batch_norm(_tiny_vgg())
    units = C.convertible_units(folded)
    b1, b2 = torch.rand(16, 1, 8, 8), torch.rand(16, 1, 8, 8) * 2
    ths = C.scan_thresholds(folded, units, [b1, b2], [4], momentum=0.9)
    m1, m2 = C.ann_outputs(folded, units, b1)[0].max(), C.ann_outputs(folded, units, b2)[0].max()
    torch.testing.assert_close(ths.max[0], 0.9 * m1 + 0.1 * m2)


def test_local_error_split_sums_to_the_total_and_max_threshold_never_clips() -> None:
    a = torch.relu(torch.randn(32, 3, 4, 4))
    V = C.mse_threshold(a, 4)
    clip, floor = C.local_error_split(a, V, 4)
    total = float((C.clip_floor(a, 4, V, True) - a).pow(2).mean())
    assert clip + floor == pytest.approx(total, rel=1e-5)
    assert clip > 0
    assert C.local_error_split(a, C.max_threshold(a), 4)[0] == 0.0


# ----------------------------------------------------------------------------- calibration


def _converted(make, T: int = 8) -> tuple[torch.nn.Module, C.ConvertedSNN, torch.Tensor]:
    folded = C.fold_batch_norm(make())
    x = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    ths = C.scan_thresholds(folded, C.convertible_units(folded), [x], [T])
    return folded, C.convert(folded, ths.mse[T], T), x


def _mean_errors(snn: C.ConvertedSNN, folded, x: torch.Tensor, dims_of) -> list[float]:
    snn_rec = C.record_units(snn, snn.spiking_units(), x, snn.T)
    ann_rec = C.record_units(folded, C.convertible_like(folded, snn), x)
    out = []
    for i in range(len(snn_rec)):
        s, r = snn_rec[i].output, ann_rec[i].output
        dims = dims_of(s)
        out.append(float((s.mean(dims) - r.mean(dims)).abs().mean()))
    return out


@pytest.mark.parametrize("make", [_tiny_vgg, _tiny_resnet])
def test_bias_calibration_reduces_the_channel_mean_mismatch(make) -> None:
    folded, snn, x = _converted(make)
    channel_dims = lambda s: [d for d in range(s.dim()) if d != 1]
    before = _mean_errors(snn, folded, x, channel_dims)
    C.bias_calibration(snn, folded, x)
    after = _mean_errors(snn, folded, x, channel_dims)
    assert sum(after) < 0.5 * sum(before)
    assert after[0] < 0.5 * before[0]


@pytest.mark.parametrize("make", [_tiny_vgg, _tiny_resnet])
def test_potential_calibration_reduces_the_per_neuron_mean_mismatch(make) -> None:
    folded, snn, x = _converted(make)
    neuron_dims = lambda s: [0]
    before = _mean_errors(snn, folded, x, neuron_dims)
    C.potential_calibration(snn, folded, x)
    after = _mean_errors(snn, folded, x, neuron_dims)
    assert sum(after) < 0.7 * sum(before)


def test_one_pass_bias_calibration_equals_the_layer_by_layer_procedure() -> None:
    folded, snn, x = _converted(_tiny_resnet)
    reference = C.ConvertedSNN(copy.deepcopy(snn.net), snn.T)
    targets = C.ann_outputs(folded, C.convertible_like(folded, reference), x)
    for i, unit in enumerate(reference.spiking_units()):  # the official loop: rerun the SNN for each layer
        s = C.record_units(reference, [unit], x, reference.T, stop_after=unit)[0].output
        dims = [d for d in range(s.dim()) if d != 1]
        with torch.no_grad():
            unit.synapse.conv.bias.sub_(s.mean(dims) - targets[i].mean(dims))
    C.bias_calibration(snn, folded, x)
    for a, b in zip(snn.spiking_units(), reference.spiking_units(), strict=True):
        torch.testing.assert_close(a.synapse.conv.bias, b.synapse.conv.bias)


@pytest.mark.parametrize("make", [_tiny_vgg, _tiny_resnet])
def test_weight_calibration_reduces_its_loss_and_keeps_biases(make) -> None:
    folded, snn, x = _converted(make, T=4)
    biases = [u.synapse.conv.bias.clone() for u in snn.spiking_units()]
    log = C.weight_calibration(snn, folded, x, iters=200, lr=1e-4, batch_size=16,
                               generator=torch.Generator().manual_seed(0))
    # The straight-through gradient can nudge an already exact first layer up a little; the
    # layers that carry propagated error (what weight calibration targets) improve.
    assert sum(log.after) < 0.95 * sum(log.before)
    assert log.after[-1] < log.before[-1]
    for u, b in zip(snn.spiking_units(), biases, strict=True):
        torch.testing.assert_close(u.synapse.conv.bias, b)


def test_snn_state_round_trip() -> None:
    folded, snn, x = _converted(_tiny_vgg)
    C.bias_calibration(snn, folded, x)
    C.potential_calibration(snn, folded, x)
    state = C._delta_state(snn, folded)
    assert all(k.endswith("bias") for k in state["state_dict"])  # only what calibration changed
    rebuilt = C.load_snn_state(folded, {**state, "state_dict": {**folded.state_dict(), **state["state_dict"]}})
    torch.testing.assert_close(rebuilt(x), snn(x))


# ----------------------------------------------------------------------------- learning


@pytest.fixture
def one_thread():
    """One intra-op thread: the converted network's accuracy at short T moves by several points with
    the summation order of a multi-threaded conv (T=4 naive: 91.7 % with 1 thread, 80.6 % with 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_light_calibration_beats_naive_conversion_on_a_trained_network(tmp_path, one_thread) -> None:
    from reprolab.data.static import digits_split

    splits = digits_split()
    exp = {"dataset": "digits", "train_seed": 0, "model": {"arch": "vgg", "layers": [8, 8, 8, "A", 16, 16, 16, "A"]},
           "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 6, "batch_size": 32}}
    net, _, _ = C.train_ann(exp, splits["train"], splits["test"], tmp_path / "ckpt", "cpu", progress=False)
    x, y = map(torch.from_numpy, splits["test"])
    ann_acc = C.accuracy(net, x, y)
    assert ann_acc > 0.9  # the ANN learns (chance is 0.1)
    folded = C.fold_batch_norm(net)
    data = C.draw_calibration_data(splits["train"][0], seed=1000, batch_size=128, threshold_batches=7,
                                   weight_samples=32)
    T = 3
    ths = C.scan_thresholds(folded, C.convertible_units(folded), data.threshold, [T])
    naive = C.accuracy(C.convert(folded, ths.max, T), x, y)
    light = C.convert(folded, ths.mse[T], T)
    C.bias_calibration(light, folded, data.bias)
    light_acc = C.accuracy(light, x, y)
    assert ann_acc - naive > 0.1  # naive conversion loses accuracy at short T
    assert light_acc > naive + 0.05
    assert ann_acc - light_acc < 0.5 * (ann_acc - naive)  # and light recovers most of the gap


# ----------------------------------------------------------------------------- config, data


def test_check_settings_names_the_key() -> None:
    claims = {"T_range": [16, 32], "few_batches": {"pipeline": "light", "ann_margin": 0.02}}
    pipes = {"none": ["threshold_max"], "light": ["threshold_mse", "bias"]}
    good = {"focus_T": 16, "eval_T": [4, 16], "pipelines": pipes, "claims": claims, "pool_variant": ["none"]}
    C.check_settings(good)
    with pytest.raises(ConfigError, match="focus_T"):
        C.check_settings({**good, "focus_T": 8})
    with pytest.raises(ConfigError, match="pipelines.light"):
        C.check_settings({**good, "pipelines": {**pipes, "light": ["bias"]}})
    with pytest.raises(ConfigError, match="unknown"):
        C.check_settings({**good, "pipelines": {**pipes, "x": ["threshold_mse", "unknown"]}})
    with pytest.raises(ConfigError, match="claims.T_range"):
        C.check_settings({**good, "eval_T": [4, 16, 64], "focus_T": 64})
    with pytest.raises(ConfigError, match="few_batches.pipeline"):
        C.check_settings({**good, "claims": {**claims, "few_batches": {"pipeline": "advanced"}}})
    with pytest.raises(ConfigError, match="trains weights"):
        C.check_settings({**good, "pipelines": {**pipes, "light": ["threshold_mse", "weight"]}})
    with pytest.raises(ConfigError, match="pool_variant"):
        C.check_settings({**good, "pool_variant": ["advanced"]})


def test_build_ann_names_bad_layers() -> None:
    with pytest.raises(ConfigError, match="model.layers"):
        build_ann({"arch": "vgg", "layers": [4, "M"]}, 1, 10, 8)
    with pytest.raises(ConfigError, match="below 1px"):
        build_ann({"arch": "vgg", "layers": [4, "A", "A", "A", "A"]}, 1, 10, 8)
    with pytest.raises(ConfigError, match="model.arch"):
        build_ann({"arch": "alexnet"}, 1, 10, 8)
    assert len(units_of(build_ann({"arch": "resnet20"}, 3, 10, 32))) == 1 + 2 * 9


def test_load_images_normalises_event_counts_and_rejects_multi_frame_caches(tmp_path) -> None:
    frames = np.zeros((3, 1, 2, 4, 4), np.uint16)
    frames[:, 0, 0, 0, :] = [[1, 2, 3, 100]] * 3
    np.savez(tmp_path / "train_T1_count.npz", frames=frames, labels=np.arange(3))
    images, _ = C.load_images(tmp_path / "train_T1_count.npz", "nmnist_demo")
    assert images.shape == (3, 2, 4, 4) and images.max() == 1.0 and images.min() == 0.0
    np.savez(tmp_path / "train_T4_count.npz", frames=np.zeros((3, 4, 2, 4, 4)), labels=np.arange(3))
    with pytest.raises(DataError, match="T1"):
        C.load_images(tmp_path / "train_T4_count.npz", "nmnist_demo")
    with pytest.raises(DataError, match="missing"):
        C.load_images(tmp_path / "absent.npz", "digits")


def test_calibration_data_depends_on_the_seed_only() -> None:
    images = np.random.default_rng(0).random((300, 1, 8, 8), dtype=np.float32)
    a = C.draw_calibration_data(images, 1000, 64, 3, 100)
    b = C.draw_calibration_data(images, 1000, 64, 3, 100)
    c = C.draw_calibration_data(images, 1001, 64, 3, 100)
    assert len(a.threshold) == 3 and a.bias.shape[0] == 64 and a.weight.shape[0] == 100
    torch.testing.assert_close(a.bias, b.bias)
    assert not torch.equal(a.bias, c.bias)


# ----------------------------------------------------------------------------- ImageNet architectures

TINY_VGG16 = [4, 4, "A", 8, 8, "A", 8, 8, 8, "A", 16, 16, 16, "A", 16, 16, 16, "A"]


def _smooth_images(n: int, size: int = 64, seed: int = 3) -> torch.Tensor:
    """Random images with large-scale structure (upsampled 4x4 noise), so deep features differ between images."""
    gen = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=gen), size=size, mode="bilinear",
                                           align_corners=False)


def _tiny_imagenet_net(arch: str, x: torch.Tensor | None = None) -> torch.nn.Module:
    """ResNet-34 / VGG-16 shaped (same depth, blocks, strides and pooling), a few channels wide.

    With ``x``, BN statistics are those of ``x`` (as after training: every layer normalised),
    with random affine parameters; otherwise :func:`_randomise_bn`.
    """
    torch.manual_seed(0)
    spec = ({"arch": "resnet34", "channels": [4, 4, 8, 8]} if arch == "resnet34"
            else {"arch": "vgg_imagenet", "layers": TINY_VGG16, "hidden": 16})
    net = build_ann(spec, 3, 10, 64)
    if x is None:
        return _randomise_bn(net)
    return bn_statistics_of(net, x)


@pytest.mark.parametrize("arch,spiking", [("resnet34", 33), ("vgg_imagenet", 15)])
def test_imagenet_architectures_convert_and_approach_the_ann(arch: str, spiking: int) -> None:
    x = _smooth_images(8)
    net = _tiny_imagenet_net(arch, x)
    folded = C.fold_batch_norm(net)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-4, rtol=1e-4)
    units = C.convertible_units(folded)
    # ResNet-34: stem, 16 blocks x 2; VGG-16: 13 convs, 2 hidden linear layers (pooling stays linear)
    assert len(units) == spiking
    ths = C.scan_thresholds(folded, units, [x], [256])
    with torch.no_grad():
        ann = folded(x)
        long = C.convert(folded, ths.max, T=256)(x) / 256
        short = C.convert(folded, ths.max, T=4)(x) / 4
    spread = (ann - ann.mean(0)).abs().mean()  # how much the outputs differ between images
    err_long, err_short = (long - ann).abs().mean(), (short - ann).abs().mean()
    assert err_long < 0.75 * spread  # the SNN follows the image-to-image differences of the ANN
    assert err_long < 0.7 * err_short  # and converges with T (33 / 15 layers of rounding errors)
    assert (long.argmax(1) == ann.argmax(1)).float().mean() >= 0.75


@pytest.mark.parametrize("arch", ["resnet34", "vgg_imagenet"])
def test_imagenet_architectures_are_torchvisions_with_average_pooling(arch: str) -> None:
    """torchvision's resnet34 / vgg16_bn weights load, and the nets compute what torchvision's do once
    max pooling is average pooling (as in the official ImageNet models)."""
    torchvision = pytest.importorskip("torchvision")
    from reprolab.snn.ann import torchvision_state_to

    torch.manual_seed(1)
    if arch == "resnet34":
        tv = torchvision.models.resnet34(num_classes=1000)
        tv.maxpool = torch.nn.AvgPool2d(3, 2, 1)
    else:
        tv = torchvision.models.vgg16_bn(num_classes=1000)
        tv.features = torch.nn.Sequential(*[torch.nn.AvgPool2d(2, 2) if isinstance(m, torch.nn.MaxPool2d) else m
                                            for m in tv.features])
    tv = _randomise_bn(tv)
    net = build_ann({"arch": arch}, 3, 1000, 224).eval()
    net.load_state_dict(torchvision_state_to(net, arch, tv.state_dict()))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = tv(x)
        torch.testing.assert_close(net(x), ref, atol=1e-4 * float(ref.abs().max()) + 1e-6, rtol=1e-4)


def test_missing_torchvision_weights_name_the_file_and_where_to_get_it(tmp_path) -> None:
    from reprolab.snn.ann import load_torchvision_weights

    net = _tiny_imagenet_net("resnet34")
    path = tmp_path / "downloads/torchvision_imagenet/resnet34-b627a593.pth"
    with pytest.raises(DataError, match=r"resnet34-b627a593\.pth.*download\.pytorch\.org/models/resnet34-b627a593"):
        load_torchvision_weights(net, "resnet34", path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated download")
    with pytest.raises(DataError, match="does not start with b627a593"):
        load_torchvision_weights(net, "resnet34", path)


def test_experiment_overrides_merge_and_name_the_experiment() -> None:
    from reprolab.snn.calib_plan import CalibPlan

    base = {"seeds": [1000, 1001], "eval_T": [4, 16], "focus_T": 16, "pipelines": {"none": ["threshold_max"]},
            "calibration": {"batch_size": 128, "augment": False, "weight": {"samples": 1024, "iters": 5, "lr": 4e-5,
                                                                             "batch_size": 32}},
            "eval_batch_size": 100, "probe_size": 8, "pool_variant": ["none"],
            "claims": {"T_range": [4, 32], "few_batches": {"pipeline": "none", "ann_margin": 0.02}}}
    inet = {"dataset": "imagenet", "model": {"arch": "resnet34", "pretrained": "torchvision"}, "seeds": [1000],
            "calibration": {"weight": {"lr": 1e-5}}, "pipelines": {"advanced": ["threshold_mse", "weight", "potential"]}}
    plan = CalibPlan({**base, "experiments": {"inet": inet, "digits": {"dataset": "digits", "model": {"arch": "vgg"}}}},
                     "data")
    merged = plan.by_experiment["inet"]
    assert merged["calibration"]["weight"] == {"samples": 1024, "iters": 5, "lr": 1e-5, "batch_size": 32}
    assert merged["pipelines"] == inet["pipelines"] and plan.seeds("inet") == [1000]
    assert plan.by_experiment["digits"]["pipelines"] == base["pipelines"]
    assert plan.weights("inet") == {"weights": "data/downloads/torchvision_imagenet/resnet34-b627a593.pth"}
    assert plan.weights("digits") == {} and plan.data_file("inet", "test") == "data/imagenet/prepared.json"
    assert plan.evals() == ["results/calib/inet/s1000/eval.json", "results/calib/digits/s1000/eval.json",
                            "results/calib/digits/s1001/eval.json"]
    with pytest.raises(ConfigError, match=r"papers.calib.experiments.inet .*focus_T = 16 is not in"):
        CalibPlan({**base, "experiments": {"inet": {**inet, "eval_T": [32, 64]}}}, "data")

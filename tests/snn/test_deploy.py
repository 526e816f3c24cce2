"""Deployment: bias removal, BN folding, export to a leak-free IAF network, TET conversion."""

import numpy as np
import pytest
import torch
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.snn.deploy import (
    DeployedNet,
    convert_vggsnn,
    export_staged,
    fold_batchnorm,
    predict,
    prepare_finetune,
    remove_biases,
)
from reprolab.snn.models import VGGSNN
from reprolab.snn.mtt import build_staged

SPEC = {"stages": [[{"conv": 6, "stride": 2}], [{"conv": 8, "pool": 2}, {"conv": 8}], [{"linear": 12, "pool": 2}]]}


def trained_looking_model(seed=0):
    """A staged network whose BN layers carry non-trivial statistics and affine parameters."""
    torch.manual_seed(seed)
    model = build_staged(SPEC, 2, 10, 34).double()
    with torch.no_grad():
        for bn in model.batch_norms():
            bn.running_var.uniform_(0.2, 3.0)
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.3, 0.3)
    return model


def poisson_frames(T=6, n=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((T, n, 2, 34, 34), 0.3, dtype=torch.float64), generator=gen)


def test_remove_biases_zeroes_and_freezes_every_bias_and_running_mean():
    model = trained_looking_model()
    n = remove_biases(model)
    assert n == len(model.batch_norms())
    for bn in model.batch_norms():
        assert float(bn.bias.abs().max()) == 0 and not bn.bias.requires_grad
        assert float(bn.running_mean.abs().max()) == 0


def test_folding_is_exact_and_bn_becomes_identity():
    model = trained_looking_model()
    remove_biases(model)
    model.eval()
    x = poisson_frames()
    model.set_config([6, 6, 6])
    with torch.no_grad():
        before = model(x)
        fold_batchnorm(model)
        after = model(x)
    torch.testing.assert_close(before, after, rtol=1e-9, atol=1e-9)
    for bn in model.batch_norms():
        probe = torch.randn(3, bn.num_features, 2, 2, dtype=torch.float64)
        torch.testing.assert_close(bn(probe), probe)


def test_fold_refuses_batch_norm_with_a_bias():
    model = trained_looking_model()
    with pytest.raises(ConfigError, match="remove_biases"):
        fold_batchnorm(model)


def test_exported_network_gives_the_same_predictions_time_stepped():
    """The converted network (BN folded, plain IAF layers) equals its unfolded time-stepped form."""
    model = trained_looking_model(seed=3)
    remove_biases(model)
    model.eval()
    x = poisson_frames(T=6, n=20, seed=1)
    for config in ([6, 6, 6], [2, 5, 3], [6, 1, 4]):
        model.set_config(config)
        with torch.no_grad():
            reference = model(x)  # BN not folded yet, eval mode
        net = export_staged(model, (2, 34, 34))
        out = net.run_frames(x, config)
        torch.testing.assert_close(out["current_sum"], reference.sum(0), rtol=1e-9, atol=1e-9)
        assert torch.equal(out["current_sum"].argmax(-1), reference.mean(0).argmax(-1))
    prepare_finetune(model)  # folding in place and exporting again changes nothing
    again = export_staged(model, (2, 34, 34)).run_frames(x, [6, 1, 4])
    for a, b in zip(again["counts"], out["counts"], strict=True):
        assert torch.equal(a, b)


def test_deployed_network_round_trips_through_a_file(tmp_path):
    model = trained_looking_model()
    remove_biases(model)
    net = export_staged(model, (2, 34, 34), {"arm": "mtt"})
    net.save(tmp_path / "net.pt")
    loaded = DeployedNet.load(tmp_path / "net.pt")
    x = poisson_frames(T=3, n=4)
    assert torch.equal(loaded.run_frames(x)["counts"][-1], net.run_frames(x)["counts"][-1])
    assert loaded.meta == {"arm": "mtt"} and loaded.num_stages == 3


def test_fanout_counts_the_targets_of_every_source():
    model = trained_looking_model()
    remove_biases(model)
    net = export_staged(model, (2, 34, 34))
    for layer in net.layers[:3]:
        fan = layer.fanout()
        ones = type(layer)(**{**vars(layer), "weight": torch.ones_like(layer.weight)})
        c, h, w = layer.in_shape
        for (ci, y, x) in [(0, 0, 0), (c - 1, h - 1, w - 1), (0, h // 2, 1), (c - 1, 1, w // 2)]:
            src = torch.zeros(1, c, h, w, dtype=torch.float64)
            src[0, ci, y, x] = 1
            assert int((ones.current(src) != 0).sum()) == fan[ci, y, x], (layer.kind, ci, y, x)


def test_predict_breaks_ties_by_potential():
    counts = np.array([[3, 5, 5, 1], [0, 0, 0, 0], [2, 1, 0, 0]])
    v = np.array([[0.9, 0.1, 0.4, 0.0], [-0.5, 0.2, -1.0, 0.1], [0.0, 0.9, 0.9, 0.9]])
    pred, tied = predict(counts, v)
    assert pred.tolist() == [2, 1, 0]
    assert tied.tolist() == [True, True, False]


def test_convert_vggsnn_folds_bn_and_reports_the_dropped_biases():
    torch.manual_seed(0)
    model = VGGSNN(2, 10, 34, [4, 8], [True, True])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    net, info = convert_vggsnn(model, (2, 34, 34), input_scale=0.5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    expected = convs[1].weight.double() * (bns[1].weight / torch.sqrt(bns[1].running_var + bns[1].eps)).double().view(-1, 1, 1, 1)
    torch.testing.assert_close(net.layers[1].weight, expected)
    assert [layer.kind for layer in net.layers] == ["conv", "conv", "linear"]
    assert net.layers[1].pool == 2 and net.layers[2].pool == 2 and net.layers[2].in_shape == (8, 17, 17)
    assert info["mean_abs_dropped_bias"] > 0
    assert net.run_frames(poisson_frames(T=3, n=2).float())["counts"][-1].shape == (2, 10)


def test_deployed_network_matches_sinabs_iaf_squeeze():
    """Cross-check with the official neuron implementation (sinabs IAFSqueeze, MultiSpike, MembraneSubtract).

    Skipped unless sinabs is importable (it is not a project dependency: its samna dependency
    is a PyPI stub that installs the real package from GitLab at import time).
    """
    sinabs_layers = pytest.importorskip("sinabs.layers")
    activation = pytest.importorskip("sinabs.activation")
    model = trained_looking_model(seed=5)
    remove_biases(model)
    net = export_staged(model, (2, 34, 34))
    for layer in net.layers:
        layer.weight *= 3.0  # loud enough to spike through to the output
    T, n = 6, 4
    x = poisson_frames(T=T, n=n, seed=2).float()
    mods = []
    for layer in net.layers:
        if layer.pool > 1:
            mods.append(nn.AvgPool2d(layer.pool))
        if layer.kind == "conv":
            conv = nn.Conv2d(layer.in_shape[0], layer.out_shape[0], layer.weight.shape[-1], layer.stride, layer.padding,
                             bias=False)
        else:
            if len(layer.in_shape) == 3:
                mods.append(nn.Flatten())
            conv = nn.Linear(layer.weight.shape[1], layer.weight.shape[0], bias=False)
        conv.weight.data = layer.weight.float().clone()
        mods += [conv, sinabs_layers.IAFSqueeze(batch_size=n, min_v_mem=net.min_v, spike_threshold=net.threshold,
                                                spike_fn=activation.MultiSpike, reset_fn=activation.MembraneSubtract())]
    reference = nn.Sequential(*mods)
    with torch.no_grad():
        spikes = reference(x.transpose(0, 1).reshape(n * T, 2, 34, 34)).reshape(n, T, -1).sum(1)
    ours = net.run_frames(x)["counts"][-1]
    assert torch.equal(ours, spikes)
    assert float(ours.sum()) > 0

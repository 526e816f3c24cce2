"""Calibrated SNNs run event-driven with clock ticks (reprolab.snn.calib_eventsim, eventsim.simulate_ticks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.snn import calib as C
from reprolab.snn import calib_eventsim as E
from reprolab.snn import eventsim
from reprolab.snn.ann import VGG, ResNet20
from tests.snn.nets import bn_statistics_of


def calibrated(T: int = 8, spiking_pool: bool = True, channel_wise: bool = False, layers=(6, "A", 8, 8, "A"),
               steps=("bias", "potential")) -> tuple[C.ConvertedSNN, torch.Tensor]:
    """A tiny conv net with thresholds, bias and potential calibration: every feature the export handles."""
    torch.manual_seed(0)
    x = torch.rand(48, 1, 8, 8)
    folded = C.fold_batch_norm(bn_statistics_of(VGG(1, 10, 8, list(layers)), x))
    units = C.convertible_units(folded, spiking_pool)
    ths = C.scan_thresholds(folded, units, [x[:32]], [T], channel_wise=channel_wise)
    snn = C.convert(folded, ths.mse[T], T, shift=True, spiking_pool=spiking_pool)
    if "bias" in steps:
        C.bias_calibration(snn, folded, x[:32])
    if "potential" in steps:
        C.potential_calibration(snn, folded, x[:32])
    return snn, x[32:]


@pytest.mark.parametrize("spiking_pool,channel_wise", [(True, False), (False, False), (True, True)])
def test_tick_run_has_the_time_stepped_spike_counts_of_every_neuron(spiking_pool: bool, channel_wise: bool) -> None:
    """One spike per tick at most: each tick is one time step, so the counts are those of the time-stepped SNN.

    The reference is the same SNN in float64 (the simulator's precision); it and the simulator
    add the same currents in a different order, so only a membrane within ~1e-15 of its
    threshold could differ, which these random networks do not produce.
    """
    snn, x = calibrated(spiking_pool=spiking_pool, channel_wise=channel_wise)
    ref = E.as_float64(snn)
    net = E.export_calibrated(ref, (1, 8, 8))
    cnet = eventsim.compile_net(net)
    counts, out = E.time_stepped_counts(ref, x.double())
    assert all(c.sum() > 0 for c in counts), "every layer must spike for the comparison to mean something"
    batch = eventsim.simulate_ticks(net, x.numpy(), snn.T, cnet=cnet)
    np.testing.assert_allclose(batch.out_v, out, rtol=1e-9, atol=1e-9)  # the readout accumulates W s_t + b
    np.testing.assert_array_equal(batch.prediction, out.argmax(1))
    for i in range(len(x)):
        res = eventsim.simulate_ticks(net, x[i:i + 1].numpy(), snn.T, keep_state=True, cnet=cnet)
        for k, (a, b) in enumerate(zip(eventsim.layer_state(net, cnet, res.state["counts"])[:-1], counts, strict=True)):
            assert np.array_equal(a, b[i]), f"image {i}, layer {k}: event-driven and time-stepped counts differ"
    # and the float32 network the DAG evaluates predicts the same classes
    with torch.no_grad():
        np.testing.assert_array_equal(snn(x).argmax(1).numpy(), batch.prediction)


@pytest.mark.parametrize("spikes", ["one", "floor"])
def test_every_unit_of_charge_is_accounted_for(spikes: str) -> None:
    """Per neuron: v_T = v_init + T tick current + received synaptic charge - spikes x threshold (no leak, no clipping)."""
    snn, x = calibrated(T=6)
    net = E.export_calibrated(E.as_float64(snn), (1, 8, 8), spikes)
    cnet = eventsim.compile_net(net)
    image = x[:1].numpy()
    res = eventsim.simulate_ticks(net, image, snn.T, keep_state=True, cnet=cnet)
    v = eventsim.layer_state(net, cnet, res.state["v"])
    counts = eventsim.layer_state(net, cnet, res.state["counts"])
    T = snn.T
    first = eventsim.first_layer_current(net, image).reshape(net.layers[0].out_shape[1:] + net.layers[0].out_shape[:1])
    sources = [None] + counts[:-1]
    for k, layer in enumerate(net.layers):
        if k == 0:
            received = T * torch.from_numpy(first).permute(2, 0, 1)
        else:
            src = torch.from_numpy(sources[k].astype(np.float64)).unsqueeze(0)
            tick = layer.tick_current.double()
            received = layer.current(src)[0] + T * (tick.view(-1, 1, 1) if received_is_conv(layer) else tick)
        v0 = layer.v_init.double() if layer.v_init is not None else 0.0
        spent = torch.from_numpy(counts[k].astype(np.float64)) * (0.0 if np.isinf(layer.threshold) else 1.0)
        np.testing.assert_allclose(v[k], (v0 + received - spent).numpy(), rtol=1e-9, atol=1e-9)
    assert res.layer_spikes[0, :-1].sum() == sum(int(c.sum()) for c in counts[:-1])
    assert res.layer_spikes[0, -1] == 0  # the readout never fires
    # synaptic operations: each spike reaches its fan-out, the clock adds to every neuron every tick
    fan = [int((torch.from_numpy(layer.fanout()).double() * torch.from_numpy(src.astype(np.float64))).sum())
           for layer, src in zip(net.layers[1:], counts[:-1], strict=True)]
    assert list(res.synops[0, 1:]) == fan and res.synops[0, 0] == 0
    assert list(res.clock_ops[0]) == [T * int(np.prod(layer.out_shape)) for layer in net.layers]


def received_is_conv(layer) -> bool:
    return len(layer.out_shape) == 3


def test_floor_mode_fires_several_spikes_where_one_spike_mode_carries_the_surplus() -> None:
    snn, x = calibrated(T=4, steps=())
    one = eventsim.simulate_ticks(E.export_calibrated(snn, (1, 8, 8), "one"), x.numpy(), 4)
    floor = eventsim.simulate_ticks(E.export_calibrated(snn, (1, 8, 8), "floor"), x.numpy(), 4)
    assert floor.layer_spikes[:, :-1].sum() > one.layer_spikes[:, :-1].sum()  # strongly driven neurons empty at once
    assert (one.layer_spikes[:, :-1] <= 4 * np.array([np.prod(layer.out_shape) for layer in
                                                       E.export_calibrated(snn, (1, 8, 8)).layers[:-1]])).all()


def test_export_rejects_residual_networks_and_unknown_modes() -> None:
    folded = C.fold_batch_norm(ResNet20(1, 10, channels=[4], blocks=[1]).eval())
    snn = C.convert(folded, [torch.tensor(1.0)] * len(C.convertible_units(folded)), 4)
    with pytest.raises(ConfigError, match="residual"):
        E.export_calibrated(snn, (1, 8, 8))
    vgg, _ = calibrated(steps=())
    with pytest.raises(ConfigError, match="papers.calib.eventsim.spikes"):
        E.export_calibrated(vgg, (1, 8, 8), "many")


def test_event_driven_calibrated_snn_beats_chance_on_digits(tmp_path) -> None:
    from reprolab.data.static import digits_split

    splits = digits_split()
    exp = {"dataset": "digits", "train_seed": 0, "model": {"arch": "vgg", "layers": [8, 8, "A", 16, 16, "A"]},
           "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 4, "batch_size": 32}}
    net, _, _ = C.train_ann(exp, splits["train"], splits["test"], tmp_path / "ckpt", "cpu", progress=False)
    folded = C.fold_batch_norm(net)
    data = C.draw_calibration_data(splits["train"][0], seed=1000, batch_size=128, threshold_batches=3,
                                   weight_samples=32)
    T = 16
    ths = C.scan_thresholds(folded, C.convertible_units(folded), data.threshold, [T])
    snn = C.convert(folded, ths.mse[T], T)
    C.bias_calibration(snn, folded, data.bias)
    x, y = splits["test"][0][:120], splits["test"][1][:120]
    res = E.compare_runs(snn, x, y, exact_images=5)
    assert res["event_accuracy"] > 0.5  # chance is 0.1
    assert res["prediction_agreement"] >= 0.99 and res["identical_layer_totals_fraction"] >= 0.99
    assert res["identical_neuron_counts"] == {"images": 5, "identical": 5}
    assert len(res["correct"]) == 120 and res["synops_per_image"] > 0

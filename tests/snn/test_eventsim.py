"""The event-driven simulator: agreement with a fine-step time-stepped simulation, conservation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.data.events import EventSet
from reprolab.data.nmnist import read_archive
from reprolab.snn import eventsim
from reprolab.snn.deploy import DeployedLayer, DeployedNet, export_staged, remove_biases, synaptic_ops
from reprolab.snn.mtt import build_staged

REPO = Path(__file__).resolve().parents[2]
SPEC = {"stages": [[{"conv": 6, "stride": 2}], [{"conv": 8, "pool": 2}, {"conv": 8}], [{"linear": 12, "pool": 2}]]}


def random_net(gain=3.0, seed=0):
    """A deployed network with mixed-sign weights, strided and pooled layers, loud enough to spike deep."""
    torch.manual_seed(seed)
    model = build_staged(SPEC, 2, 10, 34)
    for m in model.modules():  # Kaiming fan-out weights (larger than PyTorch's default) so that spikes reach the output
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    remove_biases(model)
    net = export_staged(model, (2, 34, 34))
    for layer in net.layers:
        layer.weight *= gain
    return net


@pytest.fixture(scope="module")
def recordings():
    return read_archive(REPO / "resources/demo/nmnist-small/test.zip", "test")


def first_events(events, i, n):
    rec = events.recording(i)
    sl = slice(0, n)
    return EventSet(rec["x"][sl], rec["y"][sl], rec["p"][sl], rec["t"][sl], np.array([0, len(rec["t"][sl])]),
                    events.labels[i:i + 1], events.names[i:i + 1], events.sensor_size)


def fine_step_reference(net, ev):
    """Time-stepped run with one step per distinct timestamp (finer than the smallest gap; empty steps change nothing)."""
    _, step = np.unique(ev.t, return_inverse=True)
    frames = np.zeros((step.max() + 1, 1, 2, 34, 34))
    np.add.at(frames, (step, 0, ev.p.astype(int), ev.y.astype(int), ev.x.astype(int)), 1.0)
    return net.run_frames(torch.from_numpy(frames), [step.max() + 1] * net.num_stages)


def assert_same_spikes(net, ev):
    cnet = eventsim.compile_net(net)
    res = eventsim.simulate(cnet, ev, keep_state=True)
    ref = fine_step_reference(net, ev)
    counts = eventsim.layer_state(net, cnet, res.state["counts"])
    for i, (a, b) in enumerate(zip(counts, ref["counts"], strict=True)):
        assert np.array_equal(a, b[0].numpy().astype(np.int64)), f"layer {i}: event-driven and time-stepped counts differ"
    v = eventsim.layer_state(net, cnet, res.state["v"])[-1]
    np.testing.assert_allclose(v, ref["v_out"][0].numpy(), atol=1e-9)
    np.testing.assert_array_equal(res.synops[0], synaptic_ops(net, ref["input_counts"], ref["counts"])[0])
    return counts


@pytest.mark.parametrize("i", [0, 57])
def test_spike_counts_equal_a_fine_step_time_stepped_run_on_real_events(recordings, i):
    counts = assert_same_spikes(random_net(), first_events(recordings, i, 400))
    assert counts[-1].sum() > 0, "the test network must spike all the way to the output to be meaningful"


def test_simultaneous_events_and_repeated_pixels_form_one_wave():
    rng = np.random.default_rng(1)
    n = 600
    t = np.sort(rng.integers(0, 120, n)).astype(np.int64)  # about five events per timestamp
    x, y = rng.integers(10, 14, n).astype(np.uint8), rng.integers(10, 14, n).astype(np.uint8)  # many repeats
    p = rng.integers(0, 2, n).astype(np.uint8)
    ev = EventSet(x, y, p, t, np.array([0, n]), np.array([3]), np.array(["synthetic"]), (34, 34, 2))
    counts = assert_same_spikes(random_net(gain=2.0, seed=4), ev)
    assert counts[0].sum() > 0
    assert eventsim.simulate(random_net(), ev).waves[0] == len(np.unique(t))


def test_conservation_every_event_and_every_unit_of_charge(recordings):
    net = random_net()
    ev = recordings.subset(3)
    res = eventsim.simulate(net, ev)
    assert res.events.tolist() == ev.counts.tolist()
    # Input layer: each event costs exactly the fan-out of its pixel.
    fan = net.layers[0].fanout()
    for s in range(3):
        rec = ev.recording(s)
        assert res.synops[s, 0] == fan[rec["p"].astype(int), rec["y"].astype(int), rec["x"].astype(int)].sum()
    # Every neuron: input charge = threshold * spikes + final potential - charge added by clipping.
    one = ev.subset(1)
    cnet = eventsim.compile_net(net)
    state = eventsim.simulate(cnet, one, keep_state=True).state
    rec = one.recording(0)
    src = np.zeros((2, 34, 34))
    np.add.at(src, (rec["p"].astype(int), rec["y"].astype(int), rec["x"].astype(int)), 1.0)
    layers = [eventsim.layer_state(net, cnet, state[k].astype(np.float64)) for k in ("counts", "v", "clipped")]
    for layer, cnt, v, clip in zip(net.layers, *layers, strict=True):
        charge = layer.current(torch.from_numpy(src).unsqueeze(0))[0].numpy()
        np.testing.assert_allclose(charge, net.threshold * cnt + v - clip, atol=1e-9)
        assert (v >= net.min_v - 1e-12).all() and (v < net.threshold).all()
        src = cnt


def test_single_layer_counts_are_analytic():
    """One linear layer with weight 0.3 from one pixel: after n events, floor(0.3 n) spikes, 0.3 n mod 1 left."""
    w = torch.zeros(2, 2 * 2 * 2, dtype=torch.float64)
    w[0, 0], w[1, 0] = 0.3, -0.7
    net = DeployedNet([DeployedLayer("linear", w, 1, 1, 0, (2, 2, 2), (2,), 0)], (2, 2, 2))
    n = 17
    ev = EventSet(np.zeros(n, np.uint8), np.zeros(n, np.uint8), np.zeros(n, np.uint8), np.arange(n, dtype=np.int64),
                  np.array([0, n]), np.array([0]), np.array(["x"]), (2, 2, 2))
    res = eventsim.simulate(net, ev)
    assert res.out_counts[0].tolist() == [5, 0]
    assert res.out_v[0, 0] == pytest.approx(0.3 * n - 5) and res.out_v[0, 1] == -1.0  # clipped at -1
    assert res.prediction[0] == 0 and res.synops[0, 0] == 2 * n


@pytest.mark.parametrize("min_v", [None, -1.0])
def test_without_a_floor_spikes_follow_the_running_maximum_of_the_input(min_v):
    """Leak-free IAF, reset by subtraction: with no floor, n = floor(max_t S(t) / theta) for the input sum S(t).

    A mixed-sign train (two ON pixels with weights +0.45 / -0.6) checks the formula exactly;
    with the -1 floor the neuron fires more, since inhibition below -1 is cut off event by event.
    """
    rng = np.random.default_rng(3)
    n = 400
    x = rng.integers(0, 2, n).astype(np.uint8)
    w = torch.zeros(1, 2 * 1 * 2, dtype=torch.float64)
    w[0, 0], w[0, 1] = 0.45, -0.6  # (p=0, y=0, x=0) and (p=0, y=0, x=1)
    net = DeployedNet([DeployedLayer("linear", w, 1, 1, 0, (2, 1, 2), (1,), 0)], (2, 1, 2), min_v=min_v)
    ev = EventSet(x, np.zeros(n, np.uint8), np.zeros(n, np.uint8), np.arange(n, dtype=np.int64),
                  np.array([0, n]), np.array([0]), np.array(["x"]), (2, 1, 2))
    running = np.cumsum(np.where(x == 0, 0.45, -0.6))
    analytic = max(0, int(np.floor(running.max() + 1e-12)))
    count = int(eventsim.simulate(net, ev).out_counts[0, 0])
    if min_v is None:
        assert count == analytic
    else:
        assert count > analytic


def test_bad_input_is_rejected_with_a_clear_message(recordings):
    net = random_net()
    ev = recordings.subset(1)
    shuffled = EventSet(ev.x, ev.y, ev.p, ev.t[::-1].copy(), ev.offsets, ev.labels, ev.names, ev.sensor_size)
    with pytest.raises(ConfigError, match="not sorted"):
        eventsim.simulate(net, shuffled)
    wrong = EventSet(ev.x, ev.y, ev.p, ev.t, ev.offsets, ev.labels, ev.names, (128, 128, 2))
    with pytest.raises(ConfigError, match="does not match"):
        eventsim.simulate(net, wrong)

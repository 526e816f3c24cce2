"""Calibrated SNNs of the ``calib`` DAG run through the event-driven simulator.

Beyond Li, Deng, Dong, Gu (arXiv:2205.10121), whose SNNs are simulated time-stepped: the
calibrated network (:class:`reprolab.snn.calib.ConvertedSNN`) is exported to a
:class:`reprolab.snn.deploy.DeployedNet` and run by :func:`reprolab.snn.eventsim.simulate_ticks`.

Project choice (the paper has no event-driven run; the issue asks for one):

- Time window of ``T`` clock ticks, ``T`` the network's simulation length.
- The static image is a constant current into the first layer at every tick:
  ``(W_1 x + b_1) / V_1 + 1/(2T)`` (card Sec. 2.2, direct coding).
- Every bias ``b_l`` and the threshold shift ``V_l/(2T)`` are a synapse from an always-on
  clock source that fires once per tick (``tick_current``); potential calibration's
  ``v_init`` sets the potentials at ``t = 0``.
- Per-layer (or per-channel) thresholds are normalised away: layer ``l`` is divided by its
  ``V_l`` (threshold 1) and the amplitude ``V_{l-1}`` of the spikes it receives goes into its
  weights, ``W'_l = W_l V_{l-1} / V_l``; the same for biases, shift and ``v_init``.
- The final linear layer does not spike; it accumulates ``W s_t + b`` over the ticks
  (threshold ``inf``), exactly the time-stepped network's summed output.
- Average pooling as a spiking layer is a depthwise layer; linear pooling is the next
  layer's input pooling.
- Spikes per neuron and tick: ``one`` (default) is the IF neuron of the calibrated network
  (at most one spike per step), so a run equals the time-stepped network step for step;
  ``floor`` lets a neuron emit ``floor(v)`` spikes at once as the MTT simulator's IAF
  neurons do (a neuron driven above threshold then empties its surplus at once).

Only sequential networks are exported (``arch: vgg``); residual networks would need
synapses from two source layers, which the simulator does not model.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.snn.ann import VGG, Unit
from reprolab.snn.calib import ConvertedSNN, IFNeuron
from reprolab.snn.deploy import DeployedLayer, DeployedNet, conv_out_shape
from reprolab.snn.eventsim import compile_net, layer_state, simulate_ticks

log = logging.getLogger("reprolab.snn.calib_eventsim")

#: ``papers.calib.eventsim.spikes``: spikes per neuron and tick.
SPIKE_MODES = {"one": 1, "floor": None}


def _per_channel(value: torch.Tensor, channels: int) -> torch.Tensor:
    """A layer-wise (0-d) or channel-wise threshold as ``[channels]`` float64."""
    v = value.detach().double().cpu()
    return v.expand(channels).clone() if v.dim() == 0 else v.reshape(channels)


def _linear_pool(unit: Unit) -> int:
    """Kernel of a non-spiking average-pooling unit, which must be plain pooling (kernel = stride, no bias)."""
    conv = unit.synapse.conv
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    if k != s or p != 0 or (conv.bias is not None and bool(conv.bias.abs().max() > 0)):
        raise ConfigError("event-driven export: a linear pooling layer must have kernel = stride, no padding and no bias")
    return int(k)


def _spiking_layer(unit: Unit, shape: tuple[int, ...], pool: int, amplitude: torch.Tensor, T: int
                   ) -> tuple[DeployedLayer, torch.Tensor]:
    """One converted unit as a normalised layer; returns it and its spike amplitude per channel."""
    conv, neuron = unit.synapse.conv, unit.act
    assert isinstance(neuron, IFNeuron)
    c_out = conv.out_channels
    V = _per_channel(neuron.threshold, c_out)
    w = conv.weight.detach().double().cpu()
    depthwise = unit.pooling
    if depthwise:  # weight [C, 1, k, k]: channel c reads channel c, whose spikes have amplitude amplitude[c]
        weight = w * (amplitude / V).view(-1, 1, 1, 1)
    else:
        weight = w * amplitude.view(1, -1, 1, 1) / V.view(-1, 1, 1, 1)
    bias = conv.bias.detach().double().cpu() if conv.bias is not None else torch.zeros(c_out, dtype=torch.float64)
    tick = bias / V + (0.5 / T if neuron.shift else 0.0)
    out = conv_out_shape(shape, pool, conv)
    v_init = None
    if neuron.v_init is not None:
        v_init = (neuron.v_init.detach().double().cpu().expand(out) / V.view(-1, 1, 1)).clone()
    layer = DeployedLayer("depthwise" if depthwise else "conv", weight, pool, conv.stride[0], conv.padding[0],
                          tuple(shape), out, 0, tick_current=tick, v_init=v_init, threshold=1.0)
    return layer, V


def export_calibrated(snn: ConvertedSNN, input_shape: tuple[int, int, int], spikes: str = "one") -> DeployedNet:
    """The calibrated SNN as a :class:`DeployedNet` for :func:`reprolab.snn.eventsim.simulate_ticks`.

    Parameters
    ----------
    snn
        A converted (and calibrated) :class:`reprolab.snn.ann.VGG`.
    input_shape
        ``(C, H, W)`` of the images.
    spikes
        ``one`` (at most one spike per neuron and tick, the calib IF neuron) or ``floor``.

    Raises
    ------
    ConfigError
        For a network other than the sequential VGG, or an unknown ``spikes`` mode.
    """
    if spikes not in SPIKE_MODES:
        raise ConfigError(f"papers.calib.eventsim.spikes: {spikes!r}; use one of {', '.join(SPIKE_MODES)}")
    net = snn.net
    if not isinstance(net, VGG):
        raise ConfigError(f"event-driven export supports the sequential VGG networks (model.arch vgg), not "
                          f"{type(net).__name__}: residual connections are not modelled by the simulator")
    layers: list[DeployedLayer] = []
    shape: tuple[int, ...] = tuple(input_shape)
    amplitude = torch.ones(input_shape[0], dtype=torch.float64)  # analog input: amplitude 1
    pool = 1
    for unit in net.features:
        if isinstance(unit.act, IFNeuron):
            layer, amplitude = _spiking_layer(unit, shape, pool, amplitude, snn.T)
            layers.append(layer)
            shape, pool = layer.out_shape, 1
        else:
            pool *= _linear_pool(unit)
    fc = net.classifier
    _, h, w = shape
    feature_amp = amplitude.repeat_interleave((h // pool) * (w // pool))  # torch flattens (C, H, W)
    weight = fc.weight.detach().double().cpu() * feature_amp.view(1, -1)
    bias = fc.bias.detach().double().cpu() if fc.bias is not None else torch.zeros(fc.out_features, dtype=torch.float64)
    layers.append(DeployedLayer("linear", weight, pool, 1, 0, shape, (fc.out_features,), 0, tick_current=bias,
                                threshold=float("inf")))
    return DeployedNet(layers, tuple(input_shape), threshold=1.0, min_v=None, meta={"converted_from": "calib", "T": snn.T},
                       max_spikes=SPIKE_MODES[spikes])


@torch.no_grad()
def time_stepped_counts(snn: ConvertedSNN, images: torch.Tensor) -> tuple[list[np.ndarray], np.ndarray]:
    """Spike counts of every spiking layer ``[N, C, H, W]`` and the summed output ``[N, K]`` of the time-stepped SNN.

    One forward pass; each spiking unit's output ``[T*N, ...]`` (spikes of amplitude ``V``) is
    summed over time by a hook and divided by ``V``.
    """
    units = snn.spiking_units()
    n, T = images.shape[0], snn.T
    counts: list[np.ndarray] = [np.zeros(0)] * len(units)
    handles = []

    def hook_for(i: int, unit: Unit):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            V = unit.act._broadcast(unit.act.threshold.to(output.device), output.dim())
            counts[i] = torch.round(output.view(T, n, *output.shape[1:]).sum(0) / V).long().cpu().numpy()
        return hook

    for i, unit in enumerate(units):
        handles.append(unit.register_forward_hook(hook_for(i, unit)))
    try:
        out = snn(images).cpu().numpy()
    finally:
        for h in handles:
            h.remove()
    return counts, out


def as_float64(snn: ConvertedSNN) -> ConvertedSNN:
    """A float64 copy of a converted SNN (thresholds and initial potentials included)."""
    ref = ConvertedSNN(copy.deepcopy(snn.net), snn.T).double().eval()
    for neuron in ref.neurons():
        neuron.threshold = neuron.threshold.double()
        if neuron.v_init is not None:
            neuron.v_init = neuron.v_init.double()
    return ref


def compare_runs(snn: ConvertedSNN, images: np.ndarray, labels: np.ndarray, spikes: str = "one",
                 batch_size: int = 50, exact_images: int = 10) -> dict[str, Any]:
    """Event-driven vs time-stepped run of one calibrated SNN on the same images.

    The time-stepped reference is the same network in float64 (the event-driven simulator
    computes in float64), so that with ``spikes = one`` both compute the same spikes up to
    rounding in the last bits.

    Parameters
    ----------
    exact_images
        On the first this many images, every neuron's spike count is compared as well.

    Returns
    -------
    dict
        Accuracies, prediction agreement, the fraction of images whose per-layer spike totals
        are identical (and, on ``exact_images``, whose per-neuron counts are), spikes /
        synaptic operations / tick-current additions per image, simulator seconds, and the
        per-image correctness of the event-driven run.
    """
    ref = as_float64(snn)
    deployed = export_calibrated(ref, tuple(images.shape[1:]), spikes)
    cnet = compile_net(deployed)
    simulate_ticks(deployed, images[:1], snn.T, cnet=cnet)  # compile / load the kernel outside the timing
    event_pred, step_pred, same_totals, spikes_n, synops, clock, seconds = [], [], [], [], [], [], 0.0
    for lo in range(0, len(images), batch_size):
        x = images[lo:lo + batch_size]
        res = simulate_ticks(deployed, x, snn.T, cnet=cnet)
        counts, out = time_stepped_counts(ref, torch.from_numpy(x).double())
        totals = np.stack([c.reshape(len(x), -1).sum(1) for c in counts], 1)
        same_totals.append((totals == res.layer_spikes[:, :-1]).all(1))
        event_pred.append(res.prediction)
        step_pred.append(out.argmax(1))
        seconds += res.seconds
        spikes_n.append(res.layer_spikes.sum(1))
        synops.append(res.synops.sum(1))
        clock.append(res.clock_ops.sum(1))
    exact = []
    for i in range(min(exact_images, len(images))):
        single = simulate_ticks(deployed, images[i:i + 1], snn.T, keep_state=True, cnet=cnet)
        counts, _ = time_stepped_counts(ref, torch.from_numpy(images[i:i + 1]).double())
        per_layer = layer_state(deployed, cnet, single.state["counts"])[:-1]
        exact.append(all(np.array_equal(a, c[0]) for a, c in zip(per_layer, counts, strict=True)))
    ev, st = np.concatenate(event_pred), np.concatenate(step_pred)
    return {
        "n_images": len(images),
        "event_accuracy": float((ev == labels).mean()),
        "time_stepped_accuracy": float((st == labels).mean()),
        "prediction_agreement": float((ev == st).mean()),
        "identical_layer_totals_fraction": float(np.concatenate(same_totals).mean()),
        "identical_neuron_counts": {"images": len(exact), "identical": int(sum(exact))},
        "spikes_per_image": float(np.concatenate(spikes_n).mean()),
        "synops_per_image": float(np.concatenate(synops).mean()),
        "clock_ops_per_image": float(np.concatenate(clock).mean()),
        "seconds": seconds,
        "correct": "".join("1" if c else "0" for c in (ev == labels)),
    }


def run_eventsim(exp: dict[str, Any], settings: dict[str, Any], seed: int, ann_path: str, snn_path: str,
                 eval_path: str, test_path: str, threads: int, out_json: str) -> None:
    """The ``calib_eventsim`` rule: every configured pipeline of one seed at ``focus_T``, event-driven.

    Rebuilds each calibrated SNN from ``snn.pt`` (the ANN's folded weights plus the changes
    calibration made), runs :func:`compare_runs` on the first ``eventsim.limit`` test images
    and records beside it the time-stepped accuracy that ``eval.json`` holds for the same
    images (float32, the number of the main accuracy table).

    Parameters
    ----------
    settings
        ``papers.calib`` at the configured scale with the experiment's overrides.
    """
    from reprolab.core.io import read_json, write_json
    from reprolab.core.runtime import set_threads
    from reprolab.snn.calib import fold_batch_norm, load_ann, load_snn_state, open_split

    set_threads(threads)
    cfg, T = settings["eventsim"], int(settings["focus_T"])
    split = open_split(exp, test_path, "test")
    n = min(len(split), cfg.get("limit") or len(split))
    images, labels = split.images[:n], split.labels[:n]
    folded = fold_batch_norm(load_ann(ann_path)[0])
    spiking_pool = settings["conversion"]["pool"] == "spiking"
    states = torch.load(snn_path, map_location="cpu", weights_only=False)["by_T"][str(T)]
    evaluation = read_json(eval_path)["by_T"][str(T)]
    result: dict[str, Any] = {"seed": seed, "T": T, "n_images": n, "spikes": cfg["spikes"], "pipelines": {}}
    for name in cfg["pipelines"]:
        state = states[name]
        snn = load_snn_state(folded, {**state, "state_dict": {**folded.state_dict(), **state["state_dict"]}},
                             spiking_pool)
        res = compare_runs(snn, images, labels, cfg["spikes"])
        bits = evaluation["correct"][name][:n]
        res["eval_accuracy_same_images"] = bits.count("1") / n
        result["pipelines"][name] = res
        log.info("T=%d %s: event-driven %.4f, time-stepped (float64) %.4f, eval.json %.4f on %d images; agreement "
                 "%.4f, %.1f s", T, name, res["event_accuracy"], res["time_stepped_accuracy"],
                 res["eval_accuracy_same_images"], n, res["prediction_agreement"], res["seconds"])
    write_json(out_json, result)

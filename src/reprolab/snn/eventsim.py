"""A fully event-driven simulator of deployed IAF networks (no time steps), compiled with numba.

Project choice (card ``mtt.md`` Sec. 2.7; the paper's platform and simulator are not
published): input events are processed in timestamp order; each spike adds the weight slice
it reaches to the potentials of exactly those neurons, and only neurons that received input
are checked against the threshold. Neurons follow the rule of the deployed network
(sinabs ``IAF``): no leak; ``floor(v / theta)`` spikes when ``v >= theta``, subtracted from
``v``; ``v`` clipped below at ``min_v``. Synapses have zero delay.

Simultaneity: events with the same timestamp form one *wave*, and a wave crosses the network
layer by layer: every spike a layer emits in response to the wave reaches the next layer
before that layer is checked. This is exactly the limit of a time-stepped simulation whose
step is finer than the smallest gap between distinct timestamps (tested), whereas a
depth-first order would let the result depend on the order of simultaneous spikes of mixed
sign.

Average pooling is linear: a spike at a pooled-away border position has no target, any
other spike reaches the pooled position with weight ``1 / P**2``. A source emitting ``n``
spikes at once costs ``n x fan-out`` synaptic operations (the energy proxy).

The class is the output neuron with most spikes; ties are broken by the output potential.

Extensions for converted (calibrated) networks, all off for a plain :class:`DeployedNet`:

- per-layer thresholds (``DeployedLayer.threshold``; ``inf`` makes a non-spiking readout
  that only accumulates its input, read out by potential);
- at most ``DeployedNet.max_spikes`` spikes per neuron and wave instead of ``floor(v / theta)``
  (1 = the IF neuron of ANN-to-SNN conversion, which fires once per time step);
- depthwise convolutions (average pooling as a spiking layer);
- :func:`simulate_ticks`, the *constant current* input mode: a static image enters as the
  first layer's current ``W_1 x (+ its tick current)``, delivered at each of ``T`` clock
  ticks; every other layer's ``tick_current`` (bias and threshold shift) is a synapse from
  an always-on clock source that fires once per tick; potentials start at ``v_init``.
  Each tick is one wave: the tick currents of a layer arrive with the spikes the tick
  caused in the layer before, so with ``max_spikes = 1`` the run is exactly a
  time-stepped simulation with one step per tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np
import torch

from reprolab.core.errors import ConfigError
from reprolab.data.events import EventSet
from reprolab.snn.deploy import DeployedNet, predict

# Columns of the per-layer parameter table handed to the kernel.
KIND, CS, HS, WS, POOL, HP, WP, CO, HO, WO, K, STRIDE, PAD, W_OFF, POP_OFF, MARK_OFF, SRC_OFF = range(17)
N_PARAMS = 17
CONV, LINEAR, DEPTHWISE = 0, 1, 2


@dataclass
class CompiledNet:
    """A :class:`DeployedNet` flattened into the arrays the kernel reads."""

    params: np.ndarray      # int64 [L, N_PARAMS]
    weights: np.ndarray     # float64, conv as [C_in, k, k, C_out], linear as [in, out]
    pop_sizes: np.ndarray   # int64 [L] neurons of each layer
    n_neurons: int
    n_marks: int
    max_pop: int
    threshold: float
    min_v: float
    input_shape: tuple[int, int, int]
    thresholds: np.ndarray = None  # float64 [L]: each layer's threshold (``inf``: a readout that never fires)
    max_spikes: int = 0            # spikes per neuron and wave at most (0: floor(v / theta), no limit)
    tick_current: np.ndarray = None  # float64 [n_neurons]: charge added at every clock tick (simulate_ticks)
    v_init: np.ndarray = None        # float64 [n_neurons]: potentials at the start of each sample


def _neuron_vector(layer, value) -> np.ndarray:
    """A per-channel (conv) or per-neuron value of a layer as a channel-last vector of its neurons."""
    if len(layer.out_shape) == 1:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), layer.out_shape).ravel()
    co, ho, wo = layer.out_shape
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim <= 1:  # per channel (or one value)
        return np.broadcast_to(arr, (ho, wo, co)).ravel()
    return arr.reshape(co, ho, wo).transpose(1, 2, 0).ravel()


def compile_net(net: DeployedNet) -> CompiledNet:
    """Flatten ``net`` for the kernel (channel-last potentials so that a weight slice is contiguous)."""
    # Stages only matter to time-stepped runs: event-driven there is no time axis to re-bin.
    rows, chunks, w_off, pop_off, mark_off, src_off = [], [], 0, 0, 0, 0
    pops = []
    for layer in net.layers:
        src = layer.in_shape
        cs, hs, ws = (src if len(src) == 3 else (src[0], 1, 1))
        _, hp, wp = layer.pooled_shape if len(src) == 3 else (src[0], 1, 1)
        if layer.kind == "conv":
            co, ho, wo = layer.out_shape
            k = layer.weight.shape[-1]
            w = layer.weight.double().numpy().transpose(1, 2, 3, 0)  # [C_in, k, k, C_out]
            kind = CONV
        elif layer.kind == "depthwise":
            co, ho, wo = layer.out_shape
            k = layer.weight.shape[-1]
            w = layer.weight.double().numpy()[:, 0]  # [C, k, k]
            kind = DEPTHWISE
        else:
            co, ho, wo, k = layer.out_shape[0], 1, 1, 1
            w = layer.weight.double().numpy().T  # [in, out], `in` in torch's flatten (C, H, W) order
            kind = LINEAR
        rows.append([kind, cs, hs, ws, layer.pool, hp, wp, co, ho, wo, k, layer.stride, layer.padding,
                     w_off, pop_off, mark_off, src_off])
        chunks.append(np.ascontiguousarray(w).ravel())
        w_off += chunks[-1].size
        pops.append(co * ho * wo)
        src_off += cs * hs * ws
        pop_off += co * ho * wo
        mark_off += ho * wo
    min_v = -np.inf if net.min_v is None else float(net.min_v)
    thresholds = np.array([net.threshold if layer.threshold is None else layer.threshold for layer in net.layers],
                          dtype=np.float64)
    tick = np.concatenate([_neuron_vector(layer, 0.0 if layer.tick_current is None else layer.tick_current.double())
                           for layer in net.layers])
    v_init = np.concatenate([_neuron_vector(layer, 0.0 if layer.v_init is None else layer.v_init.double())
                             for layer in net.layers])
    return CompiledNet(np.asarray(rows, dtype=np.int64), np.concatenate(chunks), np.asarray(pops, dtype=np.int64),
                       int(pop_off), int(mark_off), int(max(max(pops), np.prod(net.input_shape))), float(net.threshold),
                       min_v, tuple(net.input_shape), thresholds, int(net.max_spikes or 0),
                       np.ascontiguousarray(tick), np.ascontiguousarray(v_init))


@numba.njit(cache=True, nogil=True)
def _deliver(prm, weights, v, marks, stamp, touched, n_touched, src_idx, count):
    """Add one source's ``count`` spikes to its targets; returns (n_touched, synaptic ops)."""
    cs, ws, pool = prm[CS], prm[WS], prm[POOL]
    hp, wp, co, ho, wo = prm[HP], prm[WP], prm[CO], prm[HO], prm[WO]
    w_off, pop_off, mark_off = prm[W_OFF], prm[POP_OFF], prm[MARK_OFF]
    # Source index is channel-last: ((y * ws) + x) * cs + c (a flat vector when hs == ws == 1).
    c = src_idx % cs
    pos = src_idx // cs
    ys = pos // ws
    xs = pos % ws
    yp = ys // pool
    xp = xs // pool
    if yp >= hp or xp >= wp:
        return n_touched, 0
    amount = count / (pool * pool)
    ops = 0
    if prm[KIND] == LINEAR:
        j = (c * hp + yp) * wp + xp  # torch flattens [C, H, W]
        base = w_off + j * co
        for o in range(co):
            v[pop_off + o] += amount * weights[base + o]
        if marks[mark_off] != stamp:
            marks[mark_off] = stamp
            touched[n_touched] = 0
            n_touched += 1
        return n_touched, count * co
    k, stride, pad = prm[K], prm[STRIDE], prm[PAD]
    depthwise = prm[KIND] == DEPTHWISE
    for ky in range(k):
        ny = yp + pad - ky
        if ny < 0 or ny % stride != 0:
            continue
        yo = ny // stride
        if yo >= ho:
            continue
        for kx in range(k):
            nx = xp + pad - kx
            if nx < 0 or nx % stride != 0:
                continue
            xo = nx // stride
            if xo >= wo:
                continue
            tpos = yo * wo + xo
            tbase = pop_off + tpos * co
            if depthwise:  # one target channel: the source's own
                v[tbase + c] += amount * weights[w_off + (c * k + ky) * k + kx]
                ops += count
            else:
                wbase = w_off + ((c * k + ky) * k + kx) * co
                for o in range(co):
                    v[tbase + o] += amount * weights[wbase + o]
                ops += count * co
            if marks[mark_off + tpos] != stamp:
                marks[mark_off + tpos] = stamp
                touched[n_touched] = tpos
                n_touched += 1
    return n_touched, ops


@numba.njit(cache=True, nogil=True)
def _fire(prm, v, counts, clipped, touched, n_touched, out_idx, out_cnt, threshold, min_v, max_spikes):
    """Threshold the touched neurons of a layer; returns how many sources spike.

    A neuron at ``v >= threshold`` emits ``floor(v / threshold)`` spikes, at most ``max_spikes``
    when that is positive, and loses ``threshold`` per spike.
    """
    co, pop_off = prm[CO], prm[POP_OFF]
    n_out = 0
    for i in range(n_touched):
        base = touched[i] * co
        for o in range(co):
            idx = pop_off + base + o
            vv = v[idx]
            if vv >= threshold:
                n = np.floor(vv / threshold)
                if max_spikes > 0 and n > max_spikes:
                    n = float(max_spikes)
                vv -= n * threshold
                counts[idx] += np.int64(n)
                out_idx[n_out] = base + o
                out_cnt[n_out] = np.int64(n)
                n_out += 1
            if vv < min_v:
                clipped[idx] += min_v - vv
                vv = min_v
            v[idx] = vv
    return n_out


@numba.njit(cache=True, nogil=True)
def _scratch(n_marks, max_pop):
    """Per-run work arrays: position marks, touched positions, and source / next-layer spike lists."""
    marks = np.zeros(n_marks, dtype=np.int64)
    return (marks, np.zeros(max_pop, dtype=np.int64), np.zeros(max_pop, dtype=np.int64),
            np.zeros(max_pop, dtype=np.int64), np.zeros(max_pop, dtype=np.int64), np.zeros(max_pop, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _simulate(params, weights, n_neurons, n_marks, max_pop, thresholds, max_spikes, min_v, in_c, in_w,
              ex, ey, ep, et, offsets, lo, hi, v, counts, clipped,
              out_counts, out_v, layer_spikes, synops, events_done, waves):
    n_layers = params.shape[0]
    marks, touched, src_idx, src_cnt, nxt_idx, nxt_cnt = _scratch(n_marks, max_pop)
    wave_idx = np.zeros(max_pop, dtype=np.int64)
    wave_cnt = np.zeros(max_pop, dtype=np.int64)
    wave_mark = np.zeros(max_pop, dtype=np.int64)
    wave_pos = np.zeros(max_pop, dtype=np.int64)
    stamp = 0
    out = params[n_layers - 1]
    for s in range(lo, hi):
        v[:] = 0.0
        counts[:] = 0
        clipped[:] = 0.0
        e = offsets[s]
        end = offsets[s + 1]
        while e < end:
            # One wave: all events with this timestamp; repeated pixels add up.
            t0 = et[e]
            stamp += 1
            n_src = 0
            while e < end and et[e] == t0:
                idx = (np.int64(ey[e]) * in_w + np.int64(ex[e])) * in_c + np.int64(ep[e])
                if wave_mark[idx] != stamp:
                    wave_mark[idx] = stamp
                    wave_pos[idx] = n_src
                    wave_idx[n_src] = idx
                    wave_cnt[n_src] = 0
                    n_src += 1
                wave_cnt[wave_pos[idx]] += 1
                events_done[s - lo] += 1
                e += 1
            waves[s - lo] += 1
            for i in range(n_src):
                src_idx[i] = wave_idx[i]
                src_cnt[i] = wave_cnt[i]
            for layer in range(n_layers):
                prm = params[layer]
                stamp += 1
                n_touched = 0
                for i in range(n_src):
                    n_touched, ops = _deliver(prm, weights, v, marks, stamp, touched, n_touched, src_idx[i], src_cnt[i])
                    synops[s - lo, layer] += ops
                n_src = _fire(prm, v, counts, clipped, touched, n_touched, nxt_idx, nxt_cnt, thresholds[layer], min_v,
                              max_spikes)
                for i in range(n_src):
                    src_idx[i] = nxt_idx[i]
                    src_cnt[i] = nxt_cnt[i]
                    layer_spikes[s - lo, layer] += nxt_cnt[i]
                if n_src == 0:
                    break
        k = out[CO]
        for o in range(k):
            out_counts[s - lo, o] = counts[out[POP_OFF] + o]
            out_v[s - lo, o] = v[out[POP_OFF] + o]


@dataclass
class SimResult:
    """What :func:`simulate` measured, per sample unless noted."""

    prediction: np.ndarray      # [N]
    tied: np.ndarray            # [N] more than one class with the top spike count
    out_counts: np.ndarray      # [N, K]
    out_v: np.ndarray           # [N, K]
    layer_spikes: np.ndarray    # [N, L] spikes emitted by each layer's neurons
    synops: np.ndarray          # [N, L] synaptic operations into each layer
    events: np.ndarray          # [N] input events processed
    waves: np.ndarray           # [N] distinct timestamps
    seconds: float              # wall time of the simulation (compiled kernel only)
    state: dict[str, np.ndarray] | None = None  # per-neuron state of the last sample (``keep_state``)
    clock_ops: np.ndarray | None = None  # [N, L] tick-current additions per layer (:func:`simulate_ticks` only)

    @property
    def synops_per_second(self) -> float:
        return float(self.synops.sum() / max(self.seconds, 1e-12))


def _input_index_check(cnet: CompiledNet, events: EventSet) -> None:
    width, height, pols = events.sensor_size
    c, h, w = cnet.input_shape
    if (pols, height, width) != (c, h, w):
        raise ConfigError(f"event sensor {(pols, height, width)} (P, H, W) does not match the network input {cnet.input_shape}")


def warm_up(cnet: CompiledNet) -> None:
    """Compile (or load from numba's cache) the kernel on one tiny synthetic recording."""
    c, h, w = cnet.input_shape
    empty = EventSet(np.zeros(1, np.uint16), np.zeros(1, np.uint16), np.zeros(1, np.uint8), np.zeros(1, np.int64),
                     np.array([0, 1], np.int64), np.zeros(1, np.int64), np.array(["warm-up"]), (w, h, c))
    simulate(cnet, empty)


def simulate(net: DeployedNet | CompiledNet, events: EventSet, keep_state: bool = False) -> SimResult:
    """Run every recording of ``events`` through ``net``, one event (wave) at a time.

    Parameters
    ----------
    net
        The deployed network (compiled on the fly if needed).
    events
        Recordings; timestamps must be sorted within each recording.
    keep_state
        Also return the per-neuron counts, potentials and clipped charge after the last
        recording (channel-last order within each layer; for tests).
    """
    cnet = net if isinstance(net, CompiledNet) else compile_net(net)
    _input_index_check(cnet, events)
    n = len(events)
    t = np.asarray(events.t, dtype=np.int64)
    backwards = np.diff(t) < 0
    starts = np.asarray(events.offsets[1:-1], dtype=np.int64)
    backwards[starts[(starts > 0) & (starts < len(t))] - 1] = False  # a new recording may start earlier
    if backwards.any():
        raise ConfigError("event timestamps are not sorted within each recording; rebuild the event file "
                          "(reprolab.data.events.concatenate sorts them)")
    n_layers, k = len(cnet.params), int(cnet.params[-1, CO])
    v = np.zeros(cnet.n_neurons)
    counts = np.zeros(cnet.n_neurons, dtype=np.int64)
    clipped = np.zeros(cnet.n_neurons)
    out_counts = np.zeros((n, k), dtype=np.int64)
    out_v = np.zeros((n, k))
    layer_spikes = np.zeros((n, n_layers), dtype=np.int64)
    synops = np.zeros((n, n_layers), dtype=np.int64)
    events_done = np.zeros(n, dtype=np.int64)
    waves = np.zeros(n, dtype=np.int64)
    c, _, w = cnet.input_shape
    start = time.perf_counter()
    _simulate(cnet.params, cnet.weights, cnet.n_neurons, cnet.n_marks, cnet.max_pop, cnet.thresholds,
              cnet.max_spikes, cnet.min_v,
              c, w, events.x, events.y, events.p, t, np.asarray(events.offsets, dtype=np.int64), 0, n, v, counts,
              clipped, out_counts, out_v, layer_spikes, synops, events_done, waves)
    seconds = time.perf_counter() - start
    prediction, tied = predict(out_counts, out_v)
    state = None
    if keep_state:
        state = {"v": v, "counts": counts, "clipped": clipped}
    return SimResult(prediction, tied, out_counts, out_v, layer_spikes, synops, events_done, waves, seconds, state)


@numba.njit(cache=True, nogil=True)
def _simulate_ticks(params, weights, thresholds, max_spikes, n_marks, max_pop, first_current, tick_current, v_init,
                    T, lo, hi, v, counts, out_counts, out_v, layer_spikes, synops, clock_ops):
    """``T`` clock ticks per sample; each tick is one wave crossing the network layer by layer."""
    n_layers = params.shape[0]
    marks, touched, src_idx, src_cnt, nxt_idx, nxt_cnt = _scratch(n_marks, max_pop)
    clipped = np.zeros(v.shape[0])  # no lower clipping (min_v = -inf): stays 0
    stamp = 0
    out = params[n_layers - 1]
    for s in range(lo, hi):
        v[:] = v_init
        counts[:] = 0
        for _ in range(T):
            n_src = 0
            for layer in range(n_layers):
                prm = params[layer]
                stamp += 1
                pop_off, n_pos = prm[POP_OFF], prm[HO] * prm[WO]
                size = prm[CO] * n_pos
                # the clock source: every neuron of the layer receives its tick current (layer 0: W x + b)
                if layer == 0:
                    for i in range(size):
                        v[pop_off + i] += first_current[s - lo, i]
                else:
                    for i in range(size):
                        v[pop_off + i] += tick_current[pop_off + i]
                clock_ops[s - lo, layer] += size
                mark_off = prm[MARK_OFF]
                for p in range(n_pos):
                    marks[mark_off + p] = stamp
                    touched[p] = p
                n_touched = n_pos
                for i in range(n_src):  # the spikes this tick caused in the layer before
                    n_touched, ops = _deliver(prm, weights, v, marks, stamp, touched, n_touched, src_idx[i], src_cnt[i])
                    synops[s - lo, layer] += ops
                n_src = _fire(prm, v, counts, clipped, touched, n_touched, nxt_idx, nxt_cnt, thresholds[layer], -np.inf,
                              max_spikes)
                for i in range(n_src):
                    src_idx[i] = nxt_idx[i]
                    src_cnt[i] = nxt_cnt[i]
                    layer_spikes[s - lo, layer] += nxt_cnt[i]
        k = out[CO]
        for o in range(k):
            out_counts[s - lo, o] = counts[out[POP_OFF] + o]
            out_v[s - lo, o] = v[out[POP_OFF] + o]


def first_layer_current(net: DeployedNet, images: np.ndarray) -> np.ndarray:
    """Per-tick current of the first layer for static images ``[N, *input_shape]``, channel-last ``[N, neurons]``.

    ``W_1 x`` (after the layer's pooling) plus the layer's ``tick_current`` (bias and shift),
    in float64: the constant current an analog image injects at every tick.
    """
    layer = net.layers[0]
    with torch.no_grad():
        cur = layer.current(torch.from_numpy(np.asarray(images, dtype=np.float64)))
        if layer.tick_current is not None:
            tick = layer.tick_current.double()
            cur = cur + (tick.view(1, -1, 1, 1) if cur.dim() == 4 and tick.dim() == 1 else tick)
    if cur.dim() == 4:
        cur = cur.permute(0, 2, 3, 1)
    return np.ascontiguousarray(cur.reshape(len(cur), -1).numpy())


def simulate_ticks(net: DeployedNet, images: np.ndarray, T: int, keep_state: bool = False,
                   cnet: CompiledNet | None = None) -> SimResult:
    """Run static images through ``net`` for ``T`` clock ticks, event by event between ticks.

    The image is a constant current into the first layer at every tick
    (:func:`first_layer_current`); every other layer's ``tick_current`` arrives with the
    tick; potentials start at each layer's ``v_init``; spikes propagate with zero delay as in
    :func:`simulate`, one wave per tick. The readout (threshold ``inf``) accumulates; classes
    are predicted by output spikes, then potential.

    Parameters
    ----------
    net
        The deployed network; the first layer's weights act on the analog image.
    images
        ``[N, C, H, W]`` matching ``net.input_shape``.
    T
        Clock ticks (the time steps of the time-stepped network).
    keep_state
        Also return the per-neuron counts and potentials after the last image (for tests).
    cnet
        ``compile_net(net)``, if already compiled.

    Returns
    -------
    SimResult
        ``events`` and ``waves`` hold ``T`` per image; ``clock_ops`` the tick-current additions.
    """
    if T < 1:
        raise ConfigError(f"simulate_ticks: T must be >= 1, got {T}")
    images = np.asarray(images)
    if tuple(images.shape[1:]) != tuple(net.input_shape):
        raise ConfigError(f"images of shape {images.shape[1:]} do not match the network input {tuple(net.input_shape)}")
    cnet = cnet or compile_net(net)
    n, n_layers, k = len(images), len(cnet.params), int(cnet.params[-1, CO])
    current = first_layer_current(net, images)
    v = np.zeros(cnet.n_neurons)
    counts = np.zeros(cnet.n_neurons, dtype=np.int64)
    out_counts = np.zeros((n, k), dtype=np.int64)
    out_v = np.zeros((n, k))
    layer_spikes = np.zeros((n, n_layers), dtype=np.int64)
    synops = np.zeros((n, n_layers), dtype=np.int64)
    clock_ops = np.zeros((n, n_layers), dtype=np.int64)
    start = time.perf_counter()
    _simulate_ticks(cnet.params, cnet.weights, cnet.thresholds, cnet.max_spikes, cnet.n_marks, cnet.max_pop, current,
                    cnet.tick_current, cnet.v_init, int(T), 0, n, v, counts, out_counts, out_v, layer_spikes, synops,
                    clock_ops)
    seconds = time.perf_counter() - start
    prediction, tied = predict(out_counts, out_v)
    state = {"v": v, "counts": counts} if keep_state else None
    ticks = np.full(n, int(T), dtype=np.int64)
    return SimResult(prediction, tied, out_counts, out_v, layer_spikes, synops, ticks, ticks.copy(), seconds, state,
                     clock_ops)


def layer_state(net: DeployedNet, cnet: CompiledNet, flat: np.ndarray) -> list[np.ndarray]:
    """Split a per-neuron state vector into one array per layer in torch's ``(C, H, W)`` order."""
    out = []
    for layer, prm in zip(net.layers, cnet.params, strict=True):
        size = int(prm[CO] * prm[HO] * prm[WO])
        chunk = flat[prm[POP_OFF]: prm[POP_OFF] + size]
        if len(layer.out_shape) == 3:
            co, ho, wo = layer.out_shape
            chunk = chunk.reshape(ho, wo, co).transpose(2, 0, 1)
        out.append(chunk)
    return out

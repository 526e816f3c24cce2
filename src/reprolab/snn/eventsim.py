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
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np

from reprolab.core.errors import ConfigError
from reprolab.data.events import EventSet
from reprolab.snn.deploy import DeployedNet, predict

# Columns of the per-layer parameter table handed to the kernel.
KIND, CS, HS, WS, POOL, HP, WP, CO, HO, WO, K, STRIDE, PAD, W_OFF, POP_OFF, MARK_OFF, SRC_OFF = range(17)
N_PARAMS = 17
CONV, LINEAR = 0, 1


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
    return CompiledNet(np.asarray(rows, dtype=np.int64), np.concatenate(chunks), np.asarray(pops, dtype=np.int64),
                       int(pop_off), int(mark_off), int(max(max(pops), np.prod(net.input_shape))), float(net.threshold),
                       min_v, tuple(net.input_shape))


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
            wbase = w_off + ((c * k + ky) * k + kx) * co
            tpos = yo * wo + xo
            tbase = pop_off + tpos * co
            for o in range(co):
                v[tbase + o] += amount * weights[wbase + o]
            ops += count * co
            if marks[mark_off + tpos] != stamp:
                marks[mark_off + tpos] = stamp
                touched[n_touched] = tpos
                n_touched += 1
    return n_touched, ops


@numba.njit(cache=True, nogil=True)
def _fire(prm, v, counts, clipped, touched, n_touched, out_idx, out_cnt, threshold, min_v):
    """Threshold the touched neurons of a layer; returns how many sources spike."""
    co, pop_off = prm[CO], prm[POP_OFF]
    n_out = 0
    for i in range(n_touched):
        base = touched[i] * co
        for o in range(co):
            idx = pop_off + base + o
            vv = v[idx]
            if vv >= threshold:
                n = np.floor(vv / threshold)
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
def _simulate(params, weights, n_neurons, n_marks, max_pop, threshold, min_v, in_c, in_w,
              ex, ey, ep, et, offsets, lo, hi, v, counts, clipped,
              out_counts, out_v, layer_spikes, synops, events_done, waves):
    n_layers = params.shape[0]
    marks = np.zeros(n_marks, dtype=np.int64)
    touched = np.zeros(max_pop, dtype=np.int64)
    src_idx = np.zeros(max_pop, dtype=np.int64)
    src_cnt = np.zeros(max_pop, dtype=np.int64)
    nxt_idx = np.zeros(max_pop, dtype=np.int64)
    nxt_cnt = np.zeros(max_pop, dtype=np.int64)
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
                n_src = _fire(prm, v, counts, clipped, touched, n_touched, nxt_idx, nxt_cnt, threshold, min_v)
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
    _simulate(cnet.params, cnet.weights, cnet.n_neurons, cnet.n_marks, cnet.max_pop, cnet.threshold, cnet.min_v,
              c, w, events.x, events.y, events.p, t, np.asarray(events.offsets, dtype=np.int64), 0, n, v, counts,
              clipped, out_counts, out_v, layer_spikes, synops, events_done, waves)
    seconds = time.perf_counter() - start
    prediction, tied = predict(out_counts, out_v)
    state = None
    if keep_state:
        state = {"v": v, "counts": counts, "clipped": clipped}
    return SimResult(prediction, tied, out_counts, out_v, layer_spikes, synops, events_done, waves, seconds, state)


def layer_state(net: DeployedNet, cnet: CompiledNet, flat: np.ndarray) -> list[np.ndarray]:
    """Split a per-neuron state vector into one array per layer in torch's ``(C, H, W)`` order."""
    out = []
    for layer, prm in zip(net.layers, cnet.params, strict=True):
        size = int(prm[CO] * prm[HO] * prm[WO])
        chunk = flat[prm[POP_OFF]: prm[POP_OFF] + size]
        if layer.kind == "conv":
            co, ho, wo = layer.out_shape
            chunk = chunk.reshape(ho, wo, co).transpose(2, 0, 1)
        out.append(chunk)
    return out

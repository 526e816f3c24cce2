"""Event recordings to frames, for any number of time bins, vectorised over a whole split.

Two binnings, as in SpikingJelly's ``integrate_events_by_fixed_frames_number``:

- ``count`` (``split_by='number'``, TET's CIFAR10-DVS preprocessing): with ``N`` events and
  ``T`` frames, frame ``j`` holds events ``[j * (N // T), (j + 1) * (N // T))`` and the
  last frame also takes the remainder.
- ``time`` (``split_by='time'``): with ``dt = (t_last - t_first) // T`` (integer
  microseconds), an event goes to frame ``min((t - t_first) // dt, T - 1)``.

A frame counts events per (polarity, row, column): shape ``[N, T, P, H, W]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reprolab.core.errors import ConfigError
from reprolab.core.io import atomic_path
from reprolab.data.events import EventSet

BINNINGS = ("count", "time")


def bin_index(events: EventSet, T: int, binning: str) -> np.ndarray:
    """Frame index in ``[0, T)`` of every event of every recording."""
    if binning not in BINNINGS:
        raise ConfigError(f"frames binning must be one of {BINNINGS}, not {binning!r}")
    counts = events.counts
    sample = np.repeat(np.arange(len(counts)), counts)
    if binning == "count":
        rank = np.arange(len(sample)) - events.offsets[sample]
        per_bin = (counts // T)[sample]
        idx = np.where(per_bin > 0, rank // np.maximum(per_bin, 1), T - 1)
    else:
        start = events.offsets[:-1]
        last = np.maximum(events.offsets[1:] - 1, start)
        t0 = events.t[np.minimum(start, len(events.t) - 1)] if len(events.t) else np.zeros(len(counts), np.int64)
        t1 = events.t[np.minimum(last, len(events.t) - 1)] if len(events.t) else t0
        dt = np.maximum((t1 - t0) // T, 1)
        idx = (events.t - t0[sample]) // dt[sample]
    return np.minimum(idx, T - 1).astype(np.int64)


def events_to_frames(events: EventSet, T: int, binning: str = "count", chunk: int = 2048) -> np.ndarray:
    """Count events into ``[N, T, P, H, W]`` uint16 frames.

    Parameters
    ----------
    events
        The recordings.
    T
        Number of frames per recording.
    binning
        ``count`` or ``time`` (see the module docstring).
    chunk
        Recordings per ``bincount`` call (bounds memory at paper scale).
    """
    if T < 1:
        raise ConfigError(f"number of frames T must be >= 1, got {T}")
    width, height, pols = events.sensor_size
    frame_size = pols * height * width
    out = np.zeros((len(events), T, pols, height, width), dtype=np.uint16)
    bins = bin_index(events, T, binning)
    for lo in range(0, len(events), chunk):
        hi = min(lo + chunk, len(events))
        sl = slice(int(events.offsets[lo]), int(events.offsets[hi]))
        sample = np.repeat(np.arange(hi - lo), events.counts[lo:hi])
        flat = (((sample * T + bins[sl]) * pols + events.p[sl]) * height + events.y[sl]) * width + events.x[sl]
        counts = np.bincount(flat.astype(np.int64), minlength=(hi - lo) * T * frame_size)
        out[lo:hi] = counts.reshape(hi - lo, T, pols, height, width).astype(np.uint16)
    return out


def save_frames(path: str | Path, frames: np.ndarray, labels: np.ndarray) -> None:
    """Write frames and labels to one ``.npz`` (uncompressed, so it can be memory-mapped)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, frames=frames, labels=labels)


def load_frames(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(frames, labels)`` written by :func:`save_frames`."""
    with np.load(path) as z:
        return z["frames"], z["labels"]

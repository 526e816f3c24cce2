"""Event recordings of a whole dataset split, stored as concatenated arrays.

An :class:`EventSet` keeps every event of every recording in flat arrays (``x``, ``y``,
``p``, ``t``) with ``offsets`` marking where each recording starts, so that frame
building and the event-driven simulator work on the whole split without Python loops
over events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reprolab.core.errors import DataError
from reprolab.core.io import atomic_path


@dataclass(frozen=True)
class EventSet:
    """Events of ``n`` recordings.

    Attributes
    ----------
    x, y, p
        Pixel column, row and polarity of every event (uint8 / uint16).
    t
        Timestamp in microseconds (int64), sorted within each recording.
    offsets
        ``int64[n + 1]``; recording ``i`` owns events ``offsets[i]:offsets[i + 1]``.
    labels
        ``int64[n]`` class of each recording.
    names
        Archive member name of each recording (for provenance and splits).
    sensor_size
        ``(width, height, polarities)``.
    """

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    t: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    names: np.ndarray
    sensor_size: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def counts(self) -> np.ndarray:
        """Number of events of each recording."""
        return np.diff(self.offsets)

    def recording(self, i: int) -> dict[str, np.ndarray]:
        """Events of recording ``i`` as a dict of arrays (x, y, p, t)."""
        sl = slice(int(self.offsets[i]), int(self.offsets[i + 1]))
        return {"x": self.x[sl], "y": self.y[sl], "p": self.p[sl], "t": self.t[sl]}

    def subset(self, n: int) -> EventSet:
        """The first ``n`` recordings (all when ``n`` is larger)."""
        n = min(n, len(self))
        end = int(self.offsets[n])
        return EventSet(
            self.x[:end], self.y[:end], self.p[:end], self.t[:end], self.offsets[: n + 1].copy(),
            self.labels[:n], self.names[:n], self.sensor_size,
        )

    def save(self, path: str | Path) -> None:
        """Write to a compressed ``.npz`` atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle, x=self.x, y=self.y, p=self.p, t=self.t, offsets=self.offsets,
                labels=self.labels, names=self.names, sensor_size=np.asarray(self.sensor_size),
            )

    @classmethod
    def load(cls, path: str | Path) -> EventSet:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    z["x"], z["y"], z["p"], z["t"], z["offsets"], z["labels"], z["names"],
                    tuple(int(v) for v in z["sensor_size"]),
                )
        except (OSError, KeyError, ValueError) as err:
            raise DataError(f"{path}: not a readable event file ({err}); delete it and rerun") from err


def concatenate(recordings: list[dict[str, np.ndarray]], labels: list[int], names: list[str],
                sensor_size: tuple[int, int, int]) -> EventSet:
    """Build an :class:`EventSet` from per-recording arrays, sorting each by time (stable)."""
    counts = np.array([len(r["t"]) for r in recordings], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def cat(key: str, dtype: type) -> np.ndarray:
        if not recordings:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([np.asarray(r[key]) for r in recordings]).astype(dtype, copy=False)

    t = cat("t", np.int64)
    sample = np.repeat(np.arange(len(counts)), counts)
    order = np.lexsort((t, sample))
    x_dtype = np.uint8 if max(sensor_size[:2]) <= 256 else np.uint16
    return EventSet(
        x=cat("x", x_dtype)[order], y=cat("y", x_dtype)[order], p=cat("p", np.uint8)[order], t=t[order],
        offsets=offsets, labels=np.asarray(labels, dtype=np.int64), names=np.asarray(names, dtype=str),
        sensor_size=sensor_size,
    )

"""Reader of the N-MNIST dataset (Orchard et al., Front. Neurosci. 9:437, 2015).

The official archives hold ``Train/<digit>/<index>.bin`` and ``Test/<digit>/<index>.bin``
in the ATIS layout: 5 bytes per event, ``x`` (byte 0), ``y`` (byte 1), polarity (bit 7 of
byte 2) and a 23-bit microsecond timestamp (the low 7 bits of byte 2, bytes 3 and 4).
Events with ``y == 240`` mark a timestamp overflow: every later event gains ``2**13`` us.
The demo subset in ``resources/demo/nmnist-small`` is packed the same way.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from reprolab.core.errors import DataError
from reprolab.data.events import EventSet, concatenate

SENSOR_SIZE: tuple[int, int, int] = (34, 34, 2)
_OVERFLOW_Y = 240
_OVERFLOW_STEP = 2**13


def decode_atis(raw: bytes | np.ndarray, name: str = "<buffer>") -> dict[str, np.ndarray]:
    """Decode one ATIS ``.bin`` recording, vectorised.

    Parameters
    ----------
    raw
        File content.
    name
        Used in error messages.

    Returns
    -------
    dict
        ``x``, ``y``, ``p`` (uint8) and ``t`` (int64, microseconds) of the change-detection
        events, overflow markers removed.
    """
    data = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else raw
    if data.size % 5:
        raise DataError(f"{name}: {data.size} bytes is not a multiple of 5; the file is truncated or not ATIS .bin")
    ev = data.reshape(-1, 5).astype(np.int64)
    y = ev[:, 1]
    overflow = y == _OVERFLOW_Y
    t = ((ev[:, 2] & 127) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    t = t + _OVERFLOW_STEP * np.cumsum(overflow)
    keep = ~overflow
    return {
        "x": ev[keep, 0].astype(np.uint8),
        "y": y[keep].astype(np.uint8),
        "p": (ev[keep, 2] >> 7).astype(np.uint8),
        "t": t[keep],
    }


def _label_of(member: str, split_dir: str) -> int:
    parts = member.split("/")
    try:
        idx = parts.index(split_dir)
        return int(parts[idx + 1])
    except (ValueError, IndexError) as err:
        raise DataError(f"archive member {member!r} is not under {split_dir}/<digit>/") from err


def read_archive(archive: str | Path, split: str) -> EventSet:
    """Read every recording of one split from an N-MNIST zip archive.

    Parameters
    ----------
    archive
        ``train.zip`` / ``Train.zip`` or ``test.zip`` / ``Test.zip`` (official or demo).
    split
        ``train`` or ``test``; selects members under ``Train/`` or ``Test/``.

    Returns
    -------
    EventSet
        Recordings sorted by member name (digit folder, then file name).

    Raises
    ------
    DataError
        If the archive is unreadable or holds no recording of that split.
    """
    split_dir = {"train": "Train", "test": "Test"}[split]
    recordings, labels, names = [], [], []
    try:
        with zipfile.ZipFile(archive) as zf:
            members = sorted(
                m for m in zf.namelist() if m.endswith(".bin") and f"{split_dir}/" in m
            )
            for member in members:
                recordings.append(decode_atis(zf.read(member), name=f"{archive}:{member}"))
                labels.append(_label_of(member, split_dir))
                names.append(member)
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"{archive}: corrupt or truncated zip archive ({err}). Delete it and rerun to download it "
            "again, or restore a committed demo archive with `git checkout -- <path>`."
        ) from err
    if not recordings:
        raise DataError(f"{archive}: no {split_dir}/<digit>/*.bin recordings inside; is this an N-MNIST archive?")
    return concatenate(recordings, labels, names, SENSOR_SIZE)

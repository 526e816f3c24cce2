"""CIFAR10-DVS (Li et al., Front. Neurosci. 11:309, 2017) at paper scale.

tonic's ``CIFAR10DVS.zip`` holds one zip per class, each unpacking to
``<class>/<class>_<index>.aedat4``. There is no official split: like MTT's event-driven
code we take, within each class, the file names in sorted order and put the first 90 %
in train and the rest in test. Sorting matters: ``os.walk`` order depends on the file
system (a pitfall of tonic's loader noted in the MTT card).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reprolab.core.errors import DataError
from reprolab.data.events import EventSet, concatenate

CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
SENSOR_SIZE: tuple[int, int, int] = (128, 128, 2)


def list_recordings(root: str | Path) -> dict[str, list[Path]]:
    """Sorted ``.aedat4`` files of every class folder under ``root``."""
    root = Path(root)
    found = {c: sorted(root.rglob(f"{c}/*.aedat4")) for c in CLASSES}
    missing = [c for c, files in found.items() if not files]
    if missing:
        raise DataError(
            f"{root}: no .aedat4 recordings for classes {missing}; the CIFAR10-DVS archive is incomplete. "
            "Delete the unpacked folder and rerun."
        )
    return found


def split_per_class(files: dict[str, list[Path]], test_fraction: float = 0.1) -> dict[str, list[tuple[Path, int]]]:
    """Deterministic per-class split over sorted names: first ``1 - test_fraction`` train, rest test."""
    out: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    for label, cls in enumerate(CLASSES):
        paths = sorted(files[cls])
        n_train = int(round(len(paths) * (1.0 - test_fraction)))
        out["train"] += [(p, label) for p in paths[:n_train]]
        out["test"] += [(p, label) for p in paths[n_train:]]
    return out


def read_split(items: list[tuple[Path, int]]) -> EventSet:
    """Read recordings with tonic's aedat4 reader into an :class:`EventSet`."""
    from tonic.io import read_aedat4

    recordings = []
    for path, _ in items:
        ev = read_aedat4(str(path))
        names = ev.dtype.names
        t, x, y, p = (ev[n] for n in names[:4]) if names[0] == "t" else (ev["t"], ev["x"], ev["y"], ev["p"])
        recordings.append({"x": np.asarray(x), "y": np.asarray(y), "p": np.asarray(p).astype(np.uint8),
                           "t": np.asarray(t).astype(np.int64)})
    return concatenate(recordings, [lbl for _, lbl in items], [str(p.name) for p, _ in items], SENSOR_SIZE)


def unpack_all(archive: str | Path, dest: Path) -> Path:
    """Unpack ``CIFAR10DVS.zip`` and the per-class zips inside it (each once, atomically)."""
    from reprolab.data.archives import is_unpacked, unpack

    outer = dest / "outer"
    if not is_unpacked(outer):
        unpack(archive, outer)
    for inner in sorted(outer.rglob("*.zip")):
        target = dest / "classes" / inner.stem
        if not is_unpacked(target):
            unpack(inner, target)
    return dest / "classes"

"""Entry points of the data rules: archives to event files, events to frames, static images.

Each function reads its inputs, checks them and writes one output atomically; the
Snakemake scripts in ``workflow/scripts/data`` only pass paths and settings.
"""

from __future__ import annotations

import logging
from pathlib import Path

from reprolab.core.errors import ConfigError
from reprolab.data.download import verify_file
from reprolab.data.events import EventSet
from reprolab.data.frames import events_to_frames, save_frames
from reprolab.data.registry import DataFile

log = logging.getLogger("reprolab.data")

EVENT_DATASETS = ("nmnist_demo", "nmnist", "cifar10dvs")
STATIC_DATASETS = ("digits", "cifar10", "cifar100")


def archive_for_split(files: tuple[DataFile, ...], dataset_id: str, split: str) -> DataFile:
    """The registry file that holds ``split``: its name starts with the split, or the only file."""
    if len(files) == 1:
        return files[0]
    for f in files:
        if f.name.lower().startswith(split):
            return f
    raise ConfigError(f"config/datasets.yaml: dataset {dataset_id} has no file for split {split!r}")


def build_event_split(dataset_id: str, split: str, archive: str | Path, data_file: DataFile,
                      out: str | Path, unpack_dir: str | Path | None = None) -> EventSet:
    """Verify an archive against the registry, read one split, write an event file.

    Parameters
    ----------
    dataset_id
        ``nmnist_demo``, ``nmnist`` or ``cifar10dvs``.
    split
        ``train`` or ``test``.
    archive
        The (committed or downloaded) archive.
    data_file
        Its registry entry (checksum and size).
    out
        Destination ``.npz``.
    unpack_dir
        CIFAR10-DVS only: where the archive and its per-class zips are unpacked.
    """
    verify_file(archive, md5=data_file.md5, sha256=data_file.sha256, size=data_file.size)
    if dataset_id in ("nmnist_demo", "nmnist"):
        from reprolab.data.nmnist import read_archive

        events = read_archive(archive, split)
    elif dataset_id == "cifar10dvs":
        from reprolab.data import cifar10dvs

        root = cifar10dvs.unpack_all(archive, Path(unpack_dir or Path(out).parent / "unpacked"))
        events = cifar10dvs.read_split(cifar10dvs.split_per_class(cifar10dvs.list_recordings(root))[split])
    else:
        raise ConfigError(f"dataset {dataset_id!r} is not an event dataset (known: {', '.join(EVENT_DATASETS)})")
    events.save(out)
    log.info("%s %s: %d recordings, %d events", dataset_id, split, len(events), len(events.t))
    return events


def build_frames(events_path: str | Path, T: int, binning: str, out: str | Path) -> None:
    """Frames of ``T`` bins for every recording of an event file (cached on disk)."""
    events = EventSet.load(events_path)
    save_frames(out, events_to_frames(events, T, binning), events.labels)


def build_static(dataset_id: str, split: str, out: str | Path, download_root: str | Path) -> None:
    """Images and labels of a static dataset split, written to ``out``."""
    from reprolab.data import static

    if dataset_id == "digits":
        images, labels = static.digits_split()[split]
    elif dataset_id in ("cifar10", "cifar100"):
        images, labels = static.cifar_split(dataset_id, download_root, split)
    else:
        raise ConfigError(f"dataset {dataset_id!r} is not a static dataset (known: {', '.join(STATIC_DATASETS)})")
    static.save_images(out, images, labels)

"""Shared infrastructure: errors, atomic I/O, seeding, device choice, checkpoints, logging."""

from reprolab.core.errors import (
    ChecksumError,
    ConfigError,
    DataError,
    DownloadError,
    MissingDataError,
    ReprolabError,
)
from reprolab.core.io import append_jsonl, atomic_path, read_json, read_jsonl, write_json
from reprolab.core.runtime import choose_device, seed_everything, set_threads

__all__ = [
    "ChecksumError",
    "ConfigError",
    "DataError",
    "DownloadError",
    "MissingDataError",
    "ReprolabError",
    "append_jsonl",
    "atomic_path",
    "choose_device",
    "read_json",
    "read_jsonl",
    "seed_everything",
    "set_threads",
    "write_json",
]

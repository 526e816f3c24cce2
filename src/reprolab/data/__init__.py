"""Datasets: the registry (``config/datasets.yaml``), verified downloads, archive unpacking
and dataset readers.

The public functions are re-exported lazily, so ``import reprolab.data.<module>`` does not
import ``requests`` or the other modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fetch": "download",
    "file_digest": "download",
    "verify_file": "download",
    "part_path": "download",
    "unpack": "archives",
    "is_unpacked": "archives",
    "Dataset": "registry",
    "DataFile": "registry",
    "load_registry": "registry",
    "dataset_file_path": "registry",
    "require_available": "registry",
    "download_spec": "registry",
}

__all__ = [
    "DataFile",
    "Dataset",
    "dataset_file_path",
    "download_spec",
    "fetch",
    "file_digest",
    "is_unpacked",
    "load_registry",
    "part_path",
    "require_available",
    "unpack",
    "verify_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

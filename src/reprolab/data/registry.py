"""The dataset registry, ``config/datasets.yaml``.

Every dataset a paper uses has one entry: where each file comes from (mirror URLs, or a
file committed under ``resources/demo``), its checksum and size, its licence and citation,
and how to obtain it when it cannot be downloaded by a script::

    <dataset_id>:
      title: str
      paper_ids: [tet, mtt]
      licence: str
      citation: str
      access: open | credentials | manual | local
      instructions: str          # required for credentials / manual
      files:
        - name: Train.zip        # stored as <data_dir>/downloads/<dataset_id>/<name>
          urls: [https://...]    # required for open, absent for local
          md5: <32 hex digits>   # and/or sha256; a file without either is loaded with a warning
          size: 12345            # bytes, optional
          path: resources/demo/x # access local only: the committed file

The entries are checked when the registry is loaded; an error names the dataset id and
the key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reprolab import PAPER_IDS
from reprolab.core.errors import ConfigError, MissingDataError

logger = logging.getLogger("reprolab.data")

DEFAULT_REGISTRY = "config/datasets.yaml"
ACCESS_KINDS = ("open", "credentials", "manual", "local")
"""``open``: downloadable by script; ``credentials``: needs an account; ``manual``: a person
must download it; ``local``: committed in the repository."""

_DATASET_KEYS = {"title", "paper_ids", "licence", "citation", "access", "instructions", "files"}
_REQUIRED_DATASET_KEYS = ("title", "paper_ids", "licence", "citation", "access", "files")
_FILE_KEYS = {"name", "urls", "md5", "sha256", "size", "path", "unverified"}
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_HEX = {"md5": re.compile(r"^[0-9a-fA-F]{32}$"), "sha256": re.compile(r"^[0-9a-fA-F]{64}$")}


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    Attributes
    ----------
    name
        File name under ``<data_dir>/downloads/<dataset_id>/``.
    urls
        Mirrors, tried in order (``open`` datasets).
    md5, sha256
        Expected hex digests (lower case), ``None`` when unknown.
    size
        Expected size in bytes, ``None`` when unknown.
    path
        The committed file (``local`` datasets), relative to the workflow's directory.
    unverified
        Why no checksum can be recorded (e.g. none is published and the file cannot be
        fetched here); the download logs it. A file with neither a checksum nor this
        reason makes the registry warn at every load.
    """

    name: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    path: str | None = None
    unverified: str | None = None

    @property
    def has_checksum(self) -> bool:
        """Whether an md5 or sha256 is recorded."""
        return self.md5 is not None or self.sha256 is not None


@dataclass(frozen=True)
class Dataset:
    """One entry of ``config/datasets.yaml``; see the module docstring for the keys."""

    id: str
    title: str
    paper_ids: tuple[str, ...]
    licence: str
    citation: str
    access: str
    instructions: str = ""
    files: tuple[DataFile, ...] = field(default_factory=tuple)

    def file(self, name: str) -> DataFile:
        """Return the file called ``name``.

        Raises
        ------
        ConfigError
            If the dataset has no such file; the message lists the known names.
        """
        for data_file in self.files:
            if data_file.name == name:
                return data_file
        known = ", ".join(f.name for f in self.files)
        raise ConfigError(
            f"dataset {self.id!r} in {DEFAULT_REGISTRY} has no file {name!r} (known: {known}); "
            "fix the file name or add it to the entry"
        )


# --------------------------------------------------------------------------- loading


def load_registry(path: str | os.PathLike[str] = DEFAULT_REGISTRY) -> dict[str, Dataset]:
    """Read and check the dataset registry.

    Parameters
    ----------
    path
        The registry file.

    Returns
    -------
    dict of str to Dataset
        Datasets by id, in file order.

    Raises
    ------
    ConfigError
        If the file is missing or not YAML, or an entry is malformed; the message names
        the file, the dataset id and the key.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: dataset registry not found; run from the repository root") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}); fix the syntax") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping of dataset ids to entries at the top level")
    registry: dict[str, Dataset] = {}
    for dataset_id, entry in raw.items():
        dataset = parse_dataset(str(dataset_id), entry, source=path)
        registry[dataset.id] = dataset
    return registry


def parse_dataset(dataset_id: str, entry: Any, source: str | os.PathLike[str] = DEFAULT_REGISTRY) -> Dataset:
    """Check one registry entry and build its :class:`Dataset`.

    Parameters
    ----------
    dataset_id
        The entry's key.
    entry
        The entry's mapping as read from YAML.
    source
        The registry file, named in error messages.

    Raises
    ------
    ConfigError
        Naming ``<source>: dataset <id>, key <key>`` and what is wrong.
    """
    where = _Where(str(source), dataset_id)
    if not _ID_PATTERN.match(dataset_id):
        raise where.error("", "the id must be lower case letters, digits and underscores")
    if not isinstance(entry, Mapping):
        raise where.error("", "the entry must be a mapping of keys (title, access, files, ...)")
    unknown = sorted(set(entry) - _DATASET_KEYS)
    if unknown:
        raise where.error(unknown[0], f"unknown key; known keys: {', '.join(sorted(_DATASET_KEYS))}")
    for key in _REQUIRED_DATASET_KEYS:
        if key not in entry:
            raise where.error(key, "missing")
    for key in ("title", "licence", "citation"):
        _require_text(where, key, entry[key])
    access = entry["access"]
    if access not in ACCESS_KINDS:
        raise where.error("access", f"{access!r} is not one of {', '.join(ACCESS_KINDS)}")
    instructions = entry.get("instructions", "")
    if access in ("credentials", "manual") or "instructions" in entry:
        _require_text(where, "instructions", instructions)
    dataset = Dataset(
        id=dataset_id,
        title=entry["title"].strip(),
        paper_ids=_paper_ids(where, entry["paper_ids"]),
        licence=entry["licence"].strip(),
        citation=entry["citation"].strip(),
        access=access,
        instructions=(instructions or "").strip(),
        files=_files(where, access, entry["files"]),
    )
    for data_file in dataset.files:
        if not data_file.has_checksum and not data_file.unverified:
            logger.warning(
                "%s: dataset %s, file %s has no md5 or sha256; it will be used unverified",
                source,
                dataset_id,
                data_file.name,
            )
    return dataset


@dataclass(frozen=True)
class _Where:
    source: str
    dataset_id: str

    def error(self, key: str, problem: str) -> ConfigError:
        at = f", key {key}" if key else ""
        return ConfigError(f"{self.source}: dataset {self.dataset_id}{at}: {problem}. Fix the entry.")


def _require_text(where: _Where, key: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"must be a non-empty string, got {value!r}")


def _paper_ids(where: _Where, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise where.error("paper_ids", f"must be a non-empty list of paper ids, got {value!r}")
    for paper in value:
        if paper not in PAPER_IDS:
            raise where.error("paper_ids", f"{paper!r} is not a paper id (known: {', '.join(PAPER_IDS)})")
    return tuple(value)


def _files(where: _Where, access: str, value: Any) -> tuple[DataFile, ...]:
    if not isinstance(value, list) or not value:
        raise where.error("files", "must be a non-empty list of files")
    files = tuple(_data_file(where, access, index, item) for index, item in enumerate(value))
    names = [f.name for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise where.error("files", f"file name {duplicates[0]!r} appears twice")
    return files


def _data_file(where: _Where, access: str, index: int, item: Any) -> DataFile:
    key = f"files[{index}]"
    if not isinstance(item, Mapping):
        raise where.error(key, "must be a mapping with name, urls / path, md5 ...")
    unknown = sorted(set(item) - _FILE_KEYS)
    if unknown:
        raise where.error(f"{key}.{unknown[0]}", f"unknown key; known keys: {', '.join(sorted(_FILE_KEYS))}")
    name = item.get("name")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise where.error(f"{key}.name", f"must be a plain file name, got {name!r}")
    return DataFile(
        name=name,
        urls=_urls(where, access, f"{key}.urls", item.get("urls")),
        md5=_digest(where, f"{key}.md5", "md5", item.get("md5")),
        sha256=_digest(where, f"{key}.sha256", "sha256", item.get("sha256")),
        size=_size(where, f"{key}.size", item.get("size")),
        path=_local_path(where, access, f"{key}.path", item.get("path")),
        unverified=_unverified(where, f"{key}.unverified", item.get("unverified")),
    )


def _unverified(where: _Where, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, "must be a sentence saying why no checksum can be recorded")
    return value.strip()


def _urls(where: _Where, access: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        if access == "open":
            raise where.error(key, "missing: an open dataset needs one or more download urls")
        return ()
    if access == "local":
        raise where.error(key, "a local dataset is committed in the repository and has no urls")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise where.error(key, f"must be a non-empty list of urls, got {value!r}")
    for url in value:
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            raise where.error(key, f"{url!r} is not an http(s) url")
    return tuple(value)


def _digest(where: _Where, key: str, algorithm: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise where.error(key, f"{value!r} is not a {algorithm} hex digest (write it in quotes)")
    if not _HEX[algorithm].match(value):
        raise where.error(key, f"{value!r} is not a {algorithm} hex digest")
    return value.lower()


def _size(where: _Where, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise where.error(key, f"must be a non-negative integer (bytes), got {value!r}")
    return value


def _local_path(where: _Where, access: str, key: str, value: Any) -> str | None:
    if access != "local":
        if value is not None:
            raise where.error(key, "only a local dataset has a committed path")
        return None
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, "missing: a local dataset names its committed file")
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise where.error(key, f"{value!r} must be relative to the repository root, without '..'")
    return value


# --------------------------------------------------------------------------- use


def dataset_file_path(dataset: Dataset, file: DataFile | str, data_dir: str | os.PathLike[str]) -> Path:
    """Where a dataset's file lives on disk.

    Parameters
    ----------
    dataset
        The registry entry.
    file
        One of its files, or its name.
    data_dir
        ``config["data_dir"]``.

    Returns
    -------
    Path
        The committed path for a ``local`` dataset, else
        ``<data_dir>/downloads/<dataset id>/<file name>``.
    """
    data_file = dataset.file(file) if isinstance(file, str) else file
    if dataset.access == "local":
        return Path(data_file.path or "")
    return Path(data_dir) / "downloads" / dataset.id / data_file.name


def download_dir(dataset: Dataset, data_dir: str | os.PathLike[str]) -> Path:
    """The folder ``<data_dir>/downloads/<dataset id>`` where the dataset's files go."""
    return Path(data_dir) / "downloads" / dataset.id


def require_available(
    dataset: Dataset, data_dir: str | os.PathLike[str], names: Sequence[str] | None = None
) -> list[Path]:
    """Check that the files of a dataset that no script can download are present.

    Parameters
    ----------
    dataset
        The registry entry.
    data_dir
        ``config["data_dir"]``.
    names
        Check only these files (default: all of the dataset's files).

    Returns
    -------
    list of Path
        The dataset's file paths (for ``open`` datasets, whether present or not).

    Raises
    ------
    MissingDataError
        For a ``credentials`` or ``manual`` dataset with absent files: names the dataset,
        the missing files, where to put them and the dataset's instructions. For a
        ``local`` dataset whose committed file is missing: how to restore it.
    """
    files = dataset.files if names is None else tuple(dataset.file(n) for n in names)
    paths = [dataset_file_path(dataset, f, data_dir) for f in files]
    missing = [p for p in paths if not p.exists()]
    if not missing or dataset.access == "open":
        return paths
    if dataset.access == "local":
        raise MissingDataError(
            f"dataset {dataset.id}: committed file(s) missing: {', '.join(map(str, missing))}. "
            f"Restore them with `git checkout -- {' '.join(map(str, missing))}`."
        )
    need = "an account (credentials)" if dataset.access == "credentials" else "a manual download"
    raise MissingDataError(
        f"dataset {dataset.id} ({dataset.title}) needs {need}; missing file(s):\n"
        + "".join(f"  {p}\n" for p in missing)
        + f"How to obtain them:\n  {dataset.instructions}\n"
        f"Put the files in {download_dir(dataset, data_dir)}/ under exactly these names, then rerun."
    )


def download_spec(
    registry: Mapping[str, Dataset], dataset_id: str, filename: str, data_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """The keyword arguments of :func:`reprolab.data.download.fetch` for one registry file.

    Parameters
    ----------
    registry
        From :func:`load_registry`.
    dataset_id, filename
        The file to download.
    data_dir
        ``config["data_dir"]``.

    Returns
    -------
    dict
        ``urls`` (list), ``md5``, ``sha256``, ``size`` (``None`` when unknown).

    Raises
    ------
    ConfigError
        Unknown dataset or file, or a ``local`` dataset (nothing to download).
    MissingDataError
        A ``credentials`` / ``manual`` dataset whose requested file is absent, with its instructions.
    """
    dataset = get_dataset(registry, dataset_id)
    data_file = dataset.file(filename)
    if dataset.access == "local":
        raise ConfigError(f"dataset {dataset_id} is committed under {data_file.path}; it is not downloaded")
    if dataset.access in ("credentials", "manual"):
        require_available(dataset, data_dir, names=[filename])
    if not data_file.has_checksum:
        logger.warning("dataset %s, file %s is downloaded without a checksum: %s", dataset_id, filename,
                       data_file.unverified or "none recorded in config/datasets.yaml")
    return {
        "urls": list(data_file.urls),
        "md5": data_file.md5,
        "sha256": data_file.sha256,
        "size": data_file.size,
    }


def get_dataset(registry: Mapping[str, Dataset], dataset_id: str) -> Dataset:
    """Return ``registry[dataset_id]`` or raise a ConfigError listing the known ids."""
    try:
        return registry[dataset_id]
    except KeyError as err:
        raise ConfigError(
            f"no dataset {dataset_id!r} in {DEFAULT_REGISTRY} (known: {', '.join(registry)}); "
            "add an entry or fix the id"
        ) from err


def downloadable_ids(registry: Mapping[str, Dataset]) -> list[str]:
    """Ids of the datasets whose files go under ``<data_dir>/downloads`` (access not local)."""
    return [d.id for d in registry.values() if d.access != "local"]

"""Safe, atomic unpacking of .zip / .tar / .tar.gz archives.

:func:`unpack` extracts into a hidden temporary folder beside the destination, renames it
into place and writes ``<dest_dir>/.complete`` last, so a folder without the marker is
never taken for a finished extraction. Members that would land outside the destination
(absolute paths, ``..``, links pointing outside) are refused before anything is written.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from reprolab.core.errors import DataError
from reprolab.core.io import atomic_path

logger = logging.getLogger("reprolab.data")

COMPLETE_MARKER = ".complete"
"""Name of the file written inside the destination once extraction has finished."""

_CORRUPT_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
)


def unpack(archive: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> Path:
    """Extract an archive into ``dest_dir`` atomically.

    Parameters
    ----------
    archive
        A ``.zip``, ``.tar``, ``.tar.gz`` / ``.tgz`` (also ``.tar.bz2``, ``.tar.xz``) file.
        Files with another suffix are recognised by their content.
    dest_dir
        Folder to create. An existing folder with a ``.complete`` marker is returned as
        is; one without the marker is a leftover and is replaced.

    Returns
    -------
    Path
        ``dest_dir``, holding the archive's members and the ``.complete`` marker.

    Raises
    ------
    DataError
        If the archive is missing, corrupt or truncated, of an unknown format, or has a
        member that would be written outside ``dest_dir``. No folder is left behind.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    marker = dest_dir / COMPLETE_MARKER
    if marker.exists():
        logger.info("%s is already unpacked in %s", archive, dest_dir)
        return dest_dir
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found; rerun the rule that downloads it")
    kind = archive_kind(archive)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
    try:
        count = _extract_zip(archive, tmp) if kind == "zip" else _extract_tar(archive, tmp)
        _replace_dir(tmp, dest_dir)
    except _CORRUPT_ERRORS as err:
        raise DataError(_corrupt_message(archive, err)) from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    with atomic_path(marker) as tmp_marker:
        tmp_marker.write_text(f"{archive.name}\n{count} members\n")
    logger.info("unpacked %d members of %s into %s", count, archive, dest_dir)
    return dest_dir


def is_unpacked(dest_dir: str | os.PathLike[str]) -> bool:
    """Whether ``dest_dir`` holds a finished extraction (its ``.complete`` marker exists)."""
    return (Path(dest_dir) / COMPLETE_MARKER).is_file()


def archive_kind(archive: str | os.PathLike[str]) -> str:
    """Return ``"zip"`` or ``"tar"`` from the file name, else from the content.

    Raises
    ------
    DataError
        If the file is neither (or is too damaged to tell).
    """
    archive = Path(archive)
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except _CORRUPT_ERRORS:
        pass
    raise DataError(
        f"{archive}: not a zip or tar archive (or corrupt or truncated). Delete it and rerun to "
        f"download it again, or restore a committed file with `git checkout -- {archive}`."
    )


def _corrupt_message(archive: Path, err: BaseException) -> str:
    return (
        f"{archive}: archive is corrupt or truncated ({type(err).__name__}: {err}). Delete it and "
        f"rerun to download it again, or, if it is a committed file, restore it with "
        f"`git checkout -- {archive}`."
    )


def _check_member_name(archive: Path, name: str) -> None:
    """Refuse a member name that is absolute or climbs out with ``..``."""
    posix = PurePosixPath(name.replace("\\", "/"))
    windows = PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts:
        raise DataError(
            f"{archive}: member {name!r} would be written outside the destination folder "
            "(absolute path or '..'); refusing to unpack it. The archive is not the expected "
            "file: delete it and check its source."
        )


def _extract_zip(archive: Path, dest: Path) -> int:
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        for info in members:
            _check_member_name(archive, info.filename)
        for info in members:
            handle.extract(info, dest)
    return len(members)


def _extract_tar(archive: Path, dest: Path) -> int:
    with tarfile.open(archive, mode="r:*") as handle:
        members = handle.getmembers()
        for member in members:
            _check_tar_member(archive, member)
        if hasattr(tarfile, "data_filter"):
            handle.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            handle.extractall(dest, members=members)
    return len(members)


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    _check_member_name(archive, member.name)
    if member.issym() or member.islnk():
        target = PurePosixPath(member.name).parent / member.linkname if member.issym() else None
        link = member.linkname
        if (
            PurePosixPath(link).is_absolute()
            or (target is not None and _escapes(target))
            or (member.islnk() and ".." in PurePosixPath(link).parts)
        ):
            raise DataError(
                f"{archive}: link {member.name!r} -> {link!r} points outside the destination folder; "
                "refusing to unpack it. Delete the archive and check its source."
            )
    elif not (member.isfile() or member.isdir()):
        raise DataError(
            f"{archive}: member {member.name!r} is a device or fifo; refusing to unpack it. "
            "Delete the archive and check its source."
        )


def _escapes(path: PurePosixPath) -> bool:
    """Whether a relative path climbs above its root once ``..`` parts are applied."""
    depth = 0
    for part in path.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _replace_dir(tmp: Path, dest_dir: Path) -> None:
    """Rename ``tmp`` onto ``dest_dir``, removing a leftover folder without a marker first."""
    if dest_dir.exists():
        if dest_dir.is_dir() and not dest_dir.is_symlink():
            if any(dest_dir.iterdir()):
                logger.warning("%s exists without %s; replacing it", dest_dir, COMPLETE_MARKER)
            shutil.rmtree(dest_dir)
        else:
            dest_dir.unlink()
    os.replace(tmp, dest_dir)

"""Tests of reprolab.data.archives."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from reprolab.core.errors import DataError
from reprolab.data.archives import COMPLETE_MARKER, is_unpacked, unpack

MEMBERS = {"Train/0/00001.bin": b"\x01" * 500, "Train/1/00002.bin": b"\x02" * 700, "README.txt": b"hello\n"}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return path


def _leftovers(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".")]


def _assert_members(dest: Path) -> None:
    for name, data in MEMBERS.items():
        assert (dest / name).read_bytes() == data
    assert (dest / COMPLETE_MARKER).is_file()


def test_unpack_zip(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "train.zip", MEMBERS)
    dest = tmp_path / "out" / "train"

    assert unpack(archive, dest) == dest

    _assert_members(dest)
    assert is_unpacked(dest)
    assert _leftovers(dest.parent) == []


@pytest.mark.parametrize(("name", "mode"), [("data.tar.gz", "w:gz"), ("data.tar", "w"), ("data.tgz", "w:gz")])
def test_unpack_tar(tmp_path: Path, name: str, mode: str) -> None:
    archive = _tar(tmp_path / name, MEMBERS, mode)
    dest = tmp_path / "out"

    unpack(archive, dest)

    _assert_members(dest)
    assert _leftovers(tmp_path) == []


def test_unknown_suffix_is_sniffed(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "file_downloaded", MEMBERS)
    _assert_members(unpack(archive, tmp_path / "out"))


def test_completed_folder_is_not_unpacked_again(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", MEMBERS)
    dest = unpack(archive, tmp_path / "out")
    (dest / "README.txt").write_bytes(b"edited")
    archive.unlink()

    assert unpack(archive, dest) == dest
    assert (dest / "README.txt").read_bytes() == b"edited"


def test_leftover_folder_without_marker_is_replaced(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", MEMBERS)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "half_written.bin").write_bytes(b"junk")

    unpack(archive, dest)

    assert not (dest / "half_written.bin").exists()
    _assert_members(dest)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_truncated_archive_raises_and_leaves_nothing(tmp_path: Path, kind: str) -> None:
    big = {f"Train/{i}.bin": bytes(range(256)) * 40 + bytes([i]) for i in range(30)}
    full = tmp_path / f"full.{kind}"
    _zip(full, big) if kind == "zip" else _tar(full, big)
    archive = tmp_path / f"cut.{kind}"
    archive.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    dest = tmp_path / "out" / "cut"

    with pytest.raises(DataError) as info:
        unpack(archive, dest)

    message = str(info.value)
    assert str(archive) in message
    assert "corrupt or truncated" in message
    assert "rerun" in message and f"git checkout -- {archive}" in message
    assert not dest.exists()
    assert not (dest.parent.exists() and _leftovers(dest.parent))


def test_corrupt_member_raises(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"x.bin": b"A" * 5000})
    data = bytearray(archive.read_bytes())
    data[40:60] = b"\xff" * 20  # inside the compressed data of the only member
    archive.write_bytes(bytes(data))

    with pytest.raises(DataError, match="corrupt or truncated"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("evil", ["../evil.txt", "Train/../../evil.txt", "/tmp/evil.txt"])
def test_zip_path_traversal_refused(tmp_path: Path, evil: str) -> None:
    archive = _zip(tmp_path / "evil.zip", {"ok.txt": b"fine", evil: b"gotcha"})
    dest = tmp_path / "sub" / "out"

    with pytest.raises(DataError, match="outside the destination"):
        unpack(archive, dest)

    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "sub" / "evil.txt").exists()
    assert _leftovers(dest.parent) == []


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/reprolab-evil.txt"])
def test_tar_path_traversal_refused(tmp_path: Path, evil: str) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", {"ok.txt": b"fine", evil: b"gotcha"})
    dest = tmp_path / "out"

    with pytest.raises(DataError, match="outside the destination"):
        unpack(archive, dest)

    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists()


def test_tar_symlink_escaping_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as handle:
        link = tarfile.TarInfo("data/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../outside"
        handle.addfile(link)

    with pytest.raises(DataError, match="points outside"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_and_unknown_archives(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        unpack(tmp_path / "absent.zip", tmp_path / "out")
    text = tmp_path / "notes"
    text.write_text("not an archive")
    with pytest.raises(DataError, match="not a zip or tar"):
        unpack(text, tmp_path / "out")

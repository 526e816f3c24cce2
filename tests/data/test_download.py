"""Tests of reprolab.data.download against a local HTTP server (see conftest.py)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from reprolab.core.errors import ChecksumError, DataError, DownloadError
from reprolab.data import download
from reprolab.data.download import fetch, file_digest, part_path, verify_file

FAST = {"retries": 3, "backoff": 0.001, "timeout": 5}


def _payload(n: int = 256 * 1024) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the backoff pauses instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(download.time, "sleep", recorded.append)
    return recorded


def test_clean_download_is_verified(file_server, tmp_path: Path) -> None:
    data = _payload()
    url = file_server.add("clean.bin", data)
    dest = tmp_path / "out" / "clean.bin"

    result = fetch(url, dest, md5=_md5(data), sha256=hashlib.sha256(data).hexdigest(), size=len(data), **FAST)

    assert result == dest
    assert dest.read_bytes() == data
    assert not part_path(dest).exists()
    assert len(file_server.requests_for("clean.bin")) == 1


def test_cut_connection_resumes_with_range(file_server, tmp_path: Path, sleeps: list[float]) -> None:
    data = _payload()
    url = file_server.add("cut.bin", data)
    file_server.cut_after["cut.bin"] = [100_000]
    dest = tmp_path / "cut.bin"

    fetch(url, dest, md5=_md5(data), chunk_size=8192, **FAST)

    assert dest.read_bytes() == data
    assert not part_path(dest).exists()
    seen = file_server.requests_for("cut.bin")
    assert len(seen) == 2
    assert "Range" not in seen[0].headers
    start = int(seen[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 100_000


def test_server_ignoring_range_restarts_from_zero(file_server, tmp_path: Path) -> None:
    data = _payload()
    url = file_server.add("norange.bin", data)
    file_server.ignore_range = True
    dest = tmp_path / "norange.bin"
    part_path(dest).write_bytes(b"stale bytes from another file")

    fetch(url, dest, md5=_md5(data), **FAST)

    assert dest.read_bytes() == data
    assert "Range" in file_server.requests_for("norange.bin")[0].headers


def test_complete_part_answered_416_is_finished(file_server, tmp_path: Path) -> None:
    data = _payload(5000)
    url = file_server.add("done.bin", data)
    dest = tmp_path / "done.bin"
    part_path(dest).write_bytes(data)

    fetch(url, dest, md5=_md5(data), **FAST)

    assert dest.read_bytes() == data
    assert file_server.requests_for("done.bin")[0].headers["Range"] == "bytes=5000-"


def test_checksum_mismatch_leaves_nothing(file_server, tmp_path: Path) -> None:
    data = _payload(10_000)
    url = file_server.add("bad.bin", data)
    dest = tmp_path / "bad.bin"
    wrong = "0" * 32

    with pytest.raises(ChecksumError) as info:
        fetch(url, dest, md5=wrong, **FAST)

    message = str(info.value)
    assert "bad.bin" in message and wrong in message and _md5(data) in message
    assert "config/datasets.yaml" in message
    assert not dest.exists()
    assert not part_path(dest).exists()


def test_size_mismatch_is_reported_as_truncated(file_server, tmp_path: Path) -> None:
    data = _payload(10_000)
    url = file_server.add("short.bin", data)
    dest = tmp_path / "short.bin"

    with pytest.raises(ChecksumError, match="truncated"):
        fetch(url, dest, size=20_000, **FAST)
    assert not dest.exists() and not part_path(dest).exists()


def test_404_is_not_retried(file_server, tmp_path: Path, sleeps: list[float]) -> None:
    url = file_server.url("missing.bin")

    with pytest.raises(DownloadError) as info:
        fetch(url, tmp_path / "missing.bin", md5="0" * 32, **FAST)

    message = str(info.value)
    assert url in message and "404" in message and "config/datasets.yaml" in message
    assert len(file_server.requests_for("missing.bin")) == 1
    assert sleeps == []


def test_refused_connection_is_retried_then_fails(
    free_port: int, tmp_path: Path, sleeps: list[float]
) -> None:
    url = f"http://127.0.0.1:{free_port}/nothing.bin"
    dest = tmp_path / "nothing.bin"

    with pytest.raises(DownloadError) as info:
        fetch(url, dest, md5="0" * 32, retries=2, backoff=0.001, timeout=2)

    message = str(info.value)
    assert url in message
    assert "3 attempts" in message
    assert "refused" in message
    assert "network" in message
    assert sleeps == pytest.approx([0.001, 0.002])
    assert not dest.exists()


def test_backoff_is_capped(free_port: int, tmp_path: Path, sleeps: list[float]) -> None:
    with pytest.raises(DownloadError):
        fetch(f"http://127.0.0.1:{free_port}/x", tmp_path / "x", retries=8, backoff=1.0, timeout=2)
    assert sleeps == [1, 2, 4, 8, 16, 32, 60, 60]


def test_5xx_is_retried(file_server, tmp_path: Path, sleeps: list[float]) -> None:
    data = _payload(3000)
    url = file_server.add("flaky.bin", data)
    file_server.statuses["flaky.bin"] = [503, 429]

    fetch(url, tmp_path / "flaky.bin", md5=_md5(data), **FAST)

    assert (tmp_path / "flaky.bin").read_bytes() == data
    assert len(file_server.requests_for("flaky.bin")) == 3
    assert len(sleeps) == 2


def test_202_empty_body_falls_through_to_mirror(file_server, tmp_path: Path, sleeps: list[float]) -> None:
    data = _payload(4000)
    good = file_server.add("mirror/file.zip", data)
    blocked = file_server.url("botcheck/file.zip")
    file_server.always["botcheck/file.zip"] = 202
    dest = tmp_path / "file.zip"

    fetch([blocked, good], dest, md5=_md5(data), **FAST)

    assert dest.read_bytes() == data
    assert len(file_server.requests_for("botcheck/file.zip")) == 1
    assert len(file_server.requests_for("mirror/file.zip")) == 1
    assert sleeps == []


def test_202_everywhere_is_retried_then_fails(file_server, tmp_path: Path, sleeps: list[float]) -> None:
    url = file_server.url("botcheck/only.zip")
    file_server.always["botcheck/only.zip"] = 202

    with pytest.raises(DownloadError, match="202"):
        fetch(url, tmp_path / "only.zip", md5="0" * 32, retries=2, backoff=0.001, timeout=5)
    assert len(file_server.requests_for("botcheck/only.zip")) == 3


def test_existing_valid_file_needs_no_request(file_server, free_port: int, tmp_path: Path) -> None:
    data = _payload(2000)
    url = file_server.add("have.bin", data)
    dest = tmp_path / "have.bin"
    dest.write_bytes(data)

    fetch([url, f"http://127.0.0.1:{free_port}/have.bin"], dest, md5=_md5(data), **FAST)

    assert file_server.requests == []
    assert dest.read_bytes() == data


def test_existing_wrong_file_is_downloaded_again(file_server, tmp_path: Path) -> None:
    data = _payload(2000)
    url = file_server.add("redo.bin", data)
    dest = tmp_path / "redo.bin"
    dest.write_bytes(b"old version")

    fetch(url, dest, md5=_md5(data), **FAST)

    assert dest.read_bytes() == data


def test_download_without_checksum_warns(
    file_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = file_server.add("plain.txt", b"hello")
    with caplog.at_level(logging.WARNING, logger="reprolab.data"):
        fetch(url, tmp_path / "plain.txt", **FAST)
    assert "no checksum" in caplog.text


def test_bad_url_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="not an http"):
        fetch("ftp://example.org/x", tmp_path / "x")
    with pytest.raises(DownloadError, match="no url"):
        fetch([], tmp_path / "x")


def test_file_digest_and_verify(tmp_path: Path) -> None:
    data = _payload(3 * 1024 + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    assert file_digest(path) == _md5(data)
    assert file_digest(path, "sha256") == hashlib.sha256(data).hexdigest()
    verify_file(path, md5=_md5(data).upper(), size=len(data))
    with pytest.raises(ChecksumError, match="truncated: 3077 of 4000 bytes"):
        verify_file(path, size=4000)
    with pytest.raises(ChecksumError, match="larger than expected"):
        verify_file(path, size=10)
    with pytest.raises(ChecksumError, match="sha256 checksum mismatch"):
        verify_file(path, sha256="f" * 64)
    with pytest.raises(DataError, match="not found"):
        verify_file(tmp_path / "absent.bin", md5=_md5(data))


def test_progress_bar(file_server, tmp_path: Path) -> None:
    data = _payload(50_000)
    url = file_server.add("bar.bin", data)
    fetch(url, tmp_path / "bar.bin", md5=_md5(data), progress=True, chunk_size=4096, **FAST)
    assert (tmp_path / "bar.bin").read_bytes() == data

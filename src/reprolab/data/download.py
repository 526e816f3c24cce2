"""Resumable, verified downloads.

:func:`fetch` streams a file into ``<dest>.part``, resumes an interrupted transfer with an
HTTP ``Range`` request, retries transient failures with exponential backoff over one or
more mirror URLs, checks the size and checksum and only then renames the ``.part`` file
onto ``dest``. A file at ``dest`` is therefore always complete and verified (when a
checksum is known); a half-downloaded file only ever carries the ``.part`` suffix.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions

from reprolab.core.errors import ChecksumError, DataError, DownloadError

logger = logging.getLogger("reprolab.data")

MAX_BACKOFF = 60.0
"""Longest pause between two attempts, in seconds."""

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying besides every other 5xx."""

REGISTRY_HINT = "config/datasets.yaml"

_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)


class _TransientError(Exception):
    """One request failed in a way that may succeed on a later attempt."""


class _PermanentError(Exception):
    """One URL answered in a way that retrying will not change (e.g. HTTP 404)."""


# --------------------------------------------------------------------------- checksums


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5", chunk_size: int = 1 << 20) -> str:
    """Return the hex digest of a file, read in chunks.

    Parameters
    ----------
    path
        File to hash.
    algorithm
        Any name :func:`hashlib.new` accepts (``md5``, ``sha256``, ...).
    chunk_size
        Bytes read at a time.

    Returns
    -------
    str
        Lower-case hexadecimal digest.
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(
    path: str | os.PathLike[str],
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
) -> None:
    """Check a file's size and checksums against the recorded values.

    Parameters
    ----------
    path
        File to check.
    md5, sha256
        Expected hex digests; ``None`` skips that check.
    size
        Expected size in bytes; ``None`` skips the check.

    Raises
    ------
    DataError
        If the file does not exist.
    ChecksumError
        If the size (a shorter file is reported as truncated) or a digest differs. The
        message names the file, the expected and actual values and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; rerun the rule that downloads it")
    problem = _mismatch(path, md5, sha256, size)
    if problem is not None:
        what, key = problem
        raise ChecksumError(
            f"{path}: {what}. Delete the file and rerun to download it again (a committed file: "
            f"restore it with `git checkout -- {path}`); if the mismatch persists the upstream file "
            f"has changed: check it and update its {key} in {REGISTRY_HINT}."
        )


def _mismatch(path: Path, md5: str | None, sha256: str | None, size: int | None) -> tuple[str, str] | None:
    """Describe how ``path`` differs from the expected values, with the registry key at fault."""
    if size is not None:
        actual_size = path.stat().st_size
        if actual_size < size:
            return f"truncated: {actual_size} of {size} bytes", "size"
        if actual_size > size:
            return f"larger than expected: {actual_size} bytes instead of {size}", "size"
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual.lower() != expected.lower():
            return f"{algorithm} checksum mismatch: expected {expected.lower()}, got {actual}", algorithm
    return None


# --------------------------------------------------------------------------- fetch


def fetch(
    urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60,
    chunk_size: int = 1 << 20,
    progress: bool = False,
) -> Path:
    """Download a file from one of its mirrors, resuming and verifying it.

    Parameters
    ----------
    urls
        One URL or several mirrors of the same file, tried in order within each attempt.
    dest
        Final path. The transfer goes to ``<dest>.part`` and is renamed onto ``dest`` only
        once it is complete and verified.
    md5, sha256
        Expected hex digests. Without either the file is only checked for size and a
        warning is logged.
    size
        Expected size in bytes, optional.
    retries
        How many times a failed attempt is retried (``retries + 1`` attempts in all).
        Connection errors, timeouts, connections cut mid-body, empty HTTP 202 answers and
        HTTP 408 / 429 / 5xx are retried; other 4xx statuses rule that URL out at once.
    backoff
        Pause before retry ``k`` (0-based) is ``backoff * 2**k`` seconds, at most
        :data:`MAX_BACKOFF`.
    timeout
        Seconds to wait for the connection and for each read.
    chunk_size
        Bytes written per chunk.
    progress
        Show a tqdm progress bar (progress is logged to ``reprolab.data`` either way).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        When every attempt on every URL failed; the message lists each URL's last error.
    ChecksumError
        When the downloaded file has the wrong size or checksum; the ``.part`` file is
        deleted and nothing is left at ``dest``.
    """
    url_list = _url_list(urls)
    dest = Path(dest)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if _existing_is_valid(dest, md5, sha256, size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    if size is not None and part.exists() and part.stat().st_size > size:
        logger.warning("%s is larger than the expected %d bytes; starting over", part, size)
        part.unlink()

    failures: dict[str, str] = {}
    ruled_out: set[str] = set()
    attempts = retries + 1
    with requests.Session() as session:
        for attempt in range(attempts):
            for url in url_list:
                if url in ruled_out:
                    continue
                try:
                    _download_once(session, url, part, size, timeout, chunk_size, progress)
                except _PermanentError as err:
                    ruled_out.add(url)
                    failures[url] = str(err)
                    logger.warning("%s: %s; not retrying this url", url, err)
                    continue
                except _TransientError as err:
                    failures[url] = str(err)
                    logger.warning("%s: %s (attempt %d of %d)", url, err, attempt + 1, attempts)
                    continue
                _finish(part, dest, md5, sha256, size)
                logger.info("downloaded %s -> %s", url, dest)
                return dest
            if all(url in ruled_out for url in url_list):
                break
            if attempt + 1 < attempts:
                pause = min(backoff * 2**attempt, MAX_BACKOFF)
                logger.info("retrying in %.3g s", pause)
                time.sleep(pause)
    raise DownloadError(_failure_message(dest, url_list, failures, ruled_out, attempts, part))


def part_path(dest: str | os.PathLike[str]) -> Path:
    """Return the path of the partial download of ``dest`` (``<dest>.part``)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _url_list(urls: str | Sequence[str]) -> list[str]:
    url_list = [urls] if isinstance(urls, str) else list(urls)
    if not url_list:
        raise DownloadError(f"no url to download from; add urls to the file's entry in {REGISTRY_HINT}")
    for url in url_list:
        if not re.match(r"^https?://", url):
            raise DownloadError(f"{url!r} is not an http(s) url; fix it in {REGISTRY_HINT}")
    return url_list


def _existing_is_valid(dest: Path, md5: str | None, sha256: str | None, size: int | None) -> bool:
    """Whether ``dest`` already holds the expected file (deleting it if it does not)."""
    if not dest.exists():
        return False
    if md5 is None and sha256 is None and size is None:
        logger.warning("%s exists and no checksum is recorded for it; using it unverified", dest)
        return True
    try:
        verify_file(dest, md5=md5, sha256=sha256, size=size)
    except DataError as err:
        logger.warning("%s; deleting it and downloading again", err)
        dest.unlink()
        return False
    logger.info("%s exists and is verified; nothing to download", dest)
    return True


def _finish(part: Path, dest: Path, md5: str | None, sha256: str | None, size: int | None) -> None:
    """Verify the completed ``.part`` file and rename it onto ``dest``."""
    if md5 is None and sha256 is None:
        logger.warning("%s: no checksum recorded in %s; the download is not verified", dest, REGISTRY_HINT)
    problem = _mismatch(part, md5, sha256, size)
    if problem is not None:
        part.unlink(missing_ok=True)
        what, key = problem
        raise ChecksumError(
            f"{dest}: downloaded file failed verification: {what}. The download was deleted and "
            f"nothing was written to {dest.name}. Rerun to download it again; if the mismatch "
            f"persists the upstream file has changed: check it and update its {key} in {REGISTRY_HINT}."
        )
    os.replace(part, dest)


# --------------------------------------------------------------------------- one request


def _download_once(
    session: requests.Session,
    url: str,
    part: Path,
    size: int | None,
    timeout: float,
    chunk_size: int,
    progress: bool,
) -> None:
    """Bring ``part`` to completion from ``url`` with one request (two after an HTTP 416).

    Raises
    ------
    _TransientError, _PermanentError
        Classified failures; disk errors propagate unchanged.
    """
    for _ in range(2):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                if response.status_code == 416 and offset:
                    if _range_says_complete(response, offset, size):
                        return
                    logger.warning("%s: server refused to resume at byte %d; starting over", url, offset)
                    part.unlink()
                    continue
                _check_status(response)
                start = _resume_offset(response, offset, url, part)
                _write_body(response, part, start, size, chunk_size, progress, url)
                return
        except _TRANSIENT_ERRORS as err:
            raise _TransientError(_describe(err)) from err
    raise _TransientError("server answered HTTP 416 to a request from byte 0")


def _check_status(response: requests.Response) -> None:
    """Classify a response status; return if it carries the file."""
    status = response.status_code
    reason = f"HTTP {status} {response.reason or ''}".strip()
    if status in (200, 206):
        return
    if status in {202, 204}:
        raise _TransientError(f"{reason} with no file in the body (the server may be running a bot check)")
    if status in RETRY_STATUS or 500 <= status < 600:
        raise _TransientError(reason)
    if 400 <= status < 500:
        raise _PermanentError(reason)
    raise _TransientError(f"unexpected {reason}")


def _resume_offset(response: requests.Response, offset: int, url: str, part: Path) -> int:
    """Byte position the response body starts at: ``offset`` for a matching 206, else 0.

    A 206 answer for another range than the one asked for deletes ``part`` (the next try
    starts from zero) and counts as a transient failure.
    """
    if response.status_code != 206:
        if offset:
            logger.warning("%s ignored the Range request (HTTP %d); starting over", url, response.status_code)
        return 0
    match = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
    if match is None or int(match.group(1)) != offset:
        part.unlink(missing_ok=True)
        raise _TransientError(
            f"HTTP 206 with Content-Range {response.headers.get('Content-Range')!r}, expected start {offset}"
        )
    return offset


def _range_says_complete(response: requests.Response, offset: int, size: int | None) -> bool:
    """Whether an HTTP 416 answer means the ``.part`` file already holds the whole file."""
    match = re.match(r"bytes\s+\*/(\d+)", response.headers.get("Content-Range", ""))
    if match is not None:
        return int(match.group(1)) == offset
    return size is not None and size == offset


def _write_body(
    response: requests.Response,
    part: Path,
    start: int,
    size: int | None,
    chunk_size: int,
    progress: bool,
    url: str,
) -> None:
    """Stream the body into ``part`` from byte ``start`` (0 truncates the file)."""
    length = _content_length(response)
    total = start + length if length is not None else size
    written = 0
    bar = _progress_bar(total, start, part.name) if progress else None
    reporter = _ProgressLog(url, total, start)
    try:
        with open(part, "ab" if start else "wb") as handle:
            for chunk in response.iter_content(chunk_size=chunk_size):
                if not chunk:
                    continue
                handle.write(chunk)
                written += len(chunk)
                reporter.update(start + written)
                if bar is not None:
                    bar.update(len(chunk))
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if bar is not None:
            bar.close()
    if length is not None and written < length:
        raise _TransientError(f"connection closed after {written} of {length} bytes")
    if start + written == 0 and size != 0:
        raise _TransientError(f"HTTP {response.status_code} with an empty body")


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(err: BaseException) -> str:
    """Short, human-readable reason of a transport error."""
    text = str(err)
    if "refused" in text.lower():
        return f"connection refused ({type(err).__name__})"
    if isinstance(err, (requests.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return f"timed out ({type(err).__name__})"
    if isinstance(err, (requests.exceptions.ChunkedEncodingError, http.client.IncompleteRead)):
        return f"connection cut mid-file ({type(err).__name__})"
    return f"{type(err).__name__}: {text[:300]}"


class _ProgressLog:
    """Log download progress every 10 % (or every 30 s when the size is unknown)."""

    def __init__(self, url: str, total: int | None, start: int) -> None:
        self.url = url
        self.total = total
        self.next_fraction = 0.1
        self.last_time = time.monotonic()
        if start:
            logger.info("%s: resuming at byte %d", url, start)
        else:
            logger.info("%s: downloading%s", url, f" {total} bytes" if total else "")

    def update(self, done: int) -> None:
        if self.total:
            fraction = done / self.total
            if fraction >= self.next_fraction:
                logger.info("%s: %d%% (%d of %d bytes)", self.url, int(fraction * 100), done, self.total)
                self.next_fraction = (int(fraction * 10) + 1) / 10
        elif time.monotonic() - self.last_time > 30:
            self.last_time = time.monotonic()
            logger.info("%s: %d bytes", self.url, done)


def _progress_bar(total: int | None, start: int, name: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=name)


def _failure_message(
    dest: Path,
    urls: list[str],
    failures: dict[str, str],
    ruled_out: set[str],
    attempts: int,
    part: Path,
) -> str:
    lines = [f"could not download {dest.name}:"]
    for url in urls:
        if url in ruled_out:
            lines.append(f"  {url}: {failures.get(url, 'failed')} (not retried)")
        else:
            lines.append(f"  {url}: {failures.get(url, 'failed')} after {attempts} attempts")
    if ruled_out:
        lines.append(
            f"Check the url in {REGISTRY_HINT} (the file may have moved or need credentials) "
            "and that it opens in a browser."
        )
    if len(ruled_out) < len(urls):
        lines.append("Check the network connection (proxy, firewall, server status) and rerun.")
    if part.exists() and part.stat().st_size:
        lines.append(f"{part.stat().st_size} bytes are kept in {part}; the next run resumes from there.")
    return "\n".join(lines)

"""A local HTTP file server with knobs for misbehaviour, for the download tests.

The server serves files from a temporary folder on 127.0.0.1, honours ``Range: bytes=N-``
requests (206 / 416) and records every request. Knobs, keyed by the request path without
the leading slash:

- ``cut_after[path] = [n, ...]``: each request pops one number and the server closes the
  connection after sending that many body bytes (while announcing the full length).
- ``statuses[path] = [code, ...]``: each request pops one status and answers it with an
  empty body, before the file is served normally.
- ``always[path] = code``: every request is answered with that status and an empty body.
- ``ignore_range = True``: Range headers are ignored (always 200 and the whole file).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest


@dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict[str, str]


@dataclass
class FileServer:
    """State and knobs of the test server; see the module docstring."""

    root: Path
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    cut_after: dict[str, list[int]] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        """URL of a file served from ``root``."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        """Write ``data`` as ``root/name`` and return its URL."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(name)

    def requests_for(self, name: str) -> list[Request]:
        """The requests received for ``name``."""
        with self.lock:
            return [r for r in self.requests if r.path == name]


def _make_handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = unquote(self.path.split("?", 1)[0].lstrip("/"))
            with state.lock:
                state.requests.append(Request(name, dict(self.headers.items())))
                status = state.always.get(name)
                if status is None and state.statuses.get(name):
                    status = state.statuses[name].pop(0)
                cut = state.cut_after[name].pop(0) if state.cut_after.get(name) else None
            if status is not None:
                self._empty(status)
                return
            path = state.root / name
            if not path.is_file():
                self._empty(404)
                return
            self._serve(path.read_bytes(), cut)

        def _empty(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, data: bytes, cut: int | None) -> None:
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if match and not state.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                body = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """A :class:`FileServer` running on 127.0.0.1 in a background thread."""
    root = tmp_path / "served"
    root.mkdir()
    state = FileServer(root=root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

"""A real HTTP server on 127.0.0.1 (a thread) that replays scripted responses.

Routes are matched on the path and, optionally, on query parameters that must be present with
the given values. Each route holds a list of :class:`Reply`; each request takes the next one and
the last repeats. A reply can be delayed (``delay_s``: a slow server), cut off after
``drop_after`` body bytes (the connection is closed mid-body) or carry any status and headers.
Every request is recorded in :attr:`ReplayServer.requests` (method, path, query, headers, body).

    with ReplayServer() as srv:
        srv.route("/api/query", [Reply(503, b"busy", {"Retry-After": "1"}), Reply(200, body)])
        client.get(srv.url("/api/query"))
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early (timeouts under test) are expected, not errors."""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop_after: int | None = None

    @classmethod
    def file(cls, path: Path, status: int = 200, **headers: str) -> Reply:
        return cls(status, path.read_bytes(), dict(headers))


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0


class ReplayServer:
    def __init__(self) -> None:
        self.routes: list[_Route] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append(
                        Seen(self.command, parts.path, query, dict(self.headers.items()), body)
                    )
                    reply = server._next(parts.path, query)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.drop_after is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.drop_after is not None:
                    self.wfile.write(reply.body[: reply.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if reply.status != 304 and self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = _handle
            do_POST = _handle

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- scripting ------------------------------------------------------------------------------
    def route(self, path: str, replies: list[Reply] | Reply, **query: str) -> None:
        """Serve ``replies`` in order (the last repeats) for ``path`` (+ matching query params).
        Later routes with more query conditions take precedence over general ones."""
        self.routes.append(_Route(path, query, replies if isinstance(replies, list) else [replies]))

    def _next(self, path: str, query: dict[str, list[str]]) -> Reply:
        candidates = [
            r
            for r in self.routes
            if r.path == path and all(query.get(k, [None])[0] == v for k, v in r.query.items())
        ]
        if not candidates:
            return Reply(404, f"no route for {path} {query}".encode())
        route = max(candidates, key=lambda r: len(r.query))
        reply = route.replies[min(route.served, len(route.replies) - 1)]
        route.served += 1
        return reply

    def url(self, path: str = "") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

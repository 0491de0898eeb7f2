"""A short-lived cache of whole public responses (per process), with ETag and conditional GET.

Listing, search, paper, author, category and trending pages, the read-only JSON API and the feeds
are the same for every reader: a ``GET`` answered with 200 is kept for ``ttl_s`` seconds
(``PAPERRADAR_WEB_CACHE_S``, default 10; 0 turns the cache off) under its path and query string,
and the next identical request is answered from memory without touching the database. So a
page is at most ``ttl_s`` seconds behind an ingest. Each web process (``serve --workers N``) has
its own cache; entries are immutable once stored and the map is guarded by a lock, so threads and
processes never see a half-written entry. Memory is bounded (``max_entries`` most recently used).

Every cached (and cacheable) answer carries a strong ``ETag`` (a hash of the body) and
``Cache-Control: public, max-age=ttl_s``; a request whose ``If-None-Match`` names the ETag gets
``304 Not Modified`` with no body. Personal pages (subscription links carry a token), ``/go``,
``/metrics``, ``/healthz`` and every non-GET request pass straight through.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CACHEABLE_PREFIXES", "ResponseCache", "ResponseCacheMiddleware"]

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Any]

# Public, reader-independent routes. "/" is matched exactly (every path starts with it).
CACHEABLE_PREFIXES = (
    "/search",
    "/paper/",
    "/similar/",
    "/author/",
    "/category/",
    "/trending",
    "/cite/",
    "/feeds/",
    "/api/v1/papers",
    "/api/v1/search",
    "/api/v1/similar",
    "/api/v1/trending",
    "/api/v1/categories",
)
MAX_BODY = 1 << 20  # larger answers are not kept


@dataclass(frozen=True, slots=True)
class Entry:
    stored: float
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    etag: bytes


class ResponseCache:
    """Bounded LRU of responses by key, each valid ``ttl_s`` seconds (thread-safe)."""

    def __init__(
        self, ttl_s: float, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[bytes, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Entry | None:
        now = self.clock()
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            if now - entry.stored >= self.ttl_s:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return entry

    def put(self, key: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> Entry:
        etag = next((v for k, v in headers if k == b"etag"), None) or _etag(body)
        kept = tuple(
            (k, v)
            for k, v in headers
            if k not in (b"etag", b"cache-control", b"content-length", b"date", b"server")
        )
        entry = Entry(self.clock(), kept, body, etag)
        with self._lock:
            self._items[key] = entry
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def _cacheable(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path: str = scope["path"]
    return path == "/" or path.startswith(CACHEABLE_PREFIXES)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            value: bytes = v
            return value
    return None


def _matches(if_none_match: bytes | None, etag: bytes) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return b"*" in tags or etag in tags


class ResponseCacheMiddleware:
    """ASGI middleware serving and filling a :class:`ResponseCache` (see the module docstring)."""

    def __init__(self, app: ASGIApp, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache
        self.max_age = f"public, max-age={max(0, int(cache.ttl_s))}".encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.cache.ttl_s <= 0 or not _cacheable(scope):
            await self.app(scope, receive, send)
            return
        key = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        if_none_match = _header(scope, b"if-none-match")
        entry = self.cache.get(key)
        if entry is not None:
            await self._answer(send, entry, if_none_match)
            return

        start: Message | None = None
        chunks: list[bytes] = []
        passing = False  # not a cacheable answer: forward as it comes

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                status = message["status"]
                if (
                    status != 200
                    or any(k == b"set-cookie" for k, _ in headers)
                    or any(k == b"content-encoding" for k, _ in headers)
                ):
                    passing = True
                    await send(message)
                    return
                start = message
                return
            if passing:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            assert start is not None
            body = b"".join(chunks)
            if len(body) > MAX_BODY:
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            stored = self.cache.put(key, list(start.get("headers", [])), body)
            await self._answer(send, stored, if_none_match)

        await self.app(scope, receive, capture)

    async def _answer(self, send: Any, entry: Entry, if_none_match: bytes | None) -> None:
        validators = [(b"etag", entry.etag), (b"cache-control", self.max_age)]
        if _matches(if_none_match, entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": validators})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [
            *entry.headers,
            *validators,
            (b"content-length", str(len(entry.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.body})

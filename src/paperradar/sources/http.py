"""A polite HTTP client shared by every fetcher.

Politeness rules, in the order they apply to one request:

* a minimum interval between two requests to the same host (``settings.request_delay_s``; arXiv
  asks for 3 s and a single connection, which a synchronous client gives for free);
* on 429/5xx, timeouts and connection errors: retry up to ``settings.max_retries`` times, waiting
  ``Retry-After`` (seconds or an HTTP date) when the server says, else exponential backoff with
  full jitter;
* a descriptive ``User-Agent`` (``settings.user_agent``);
* conditional requests: pass the stored ``etag`` / ``last_modified`` and get a ``304`` back as
  :attr:`Fetched.not_modified`; :attr:`Fetched.validators` are what to store in the checkpoint.

When it gives up it raises :class:`~paperradar.errors.SourceError` naming the URL and the status.
``sleep``, ``clock`` and ``now`` are injectable so tests run without waiting.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from paperradar.config import Settings
from paperradar.errors import SourceError

__all__ = ["RETRYABLE_STATUSES", "Fetched", "PoliteClient", "parse_retry_after"]

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE_S = 1.0
_BACKOFF_CAP_S = 60.0


@dataclass(slots=True)
class Fetched:
    """A fully read response: status, body, headers and the final URL (with its query)."""

    url: str
    status: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def validators(self) -> dict[str, str]:
        """``{"etag": …, "last_modified": …}`` (present keys only), to keep in a checkpoint."""
        out: dict[str, str] = {}
        if self.etag:
            out["etag"] = self.etag
        if self.last_modified:
            out["last_modified"] = self.last_modified
        return out


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class PoliteClient:
    """Synchronous HTTP client with per-host pacing, retries and conditional requests.

    ``min_interval_s`` overrides ``settings.request_delay_s``; ``host_intervals`` sets it per host
    (e.g. ``{"api.openalex.org": 0.1}``). ``max_retry_after_s`` caps how long one ``Retry-After``
    may make us wait; a longer demand makes the request fail with a message saying when to retry.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        min_interval_s: float | None = None,
        host_intervals: Mapping[str, float] | None = None,
        max_retry_after_s: float = 600.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.min_interval_s = (
            settings.request_delay_s if min_interval_s is None else float(min_interval_s)
        )
        self.host_intervals = dict(host_intervals or {})
        self.max_retries = max(0, settings.max_retries)
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._rng = rng
        self._last_request: dict[str, float] = {}
        self._client = httpx.Client(
            headers={"User-Agent": settings.user_agent},
            timeout=settings.request_timeout_s,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            transport=transport,
        )

    # -- context management -------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public API ---------------------------------------------------------------------------
    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        accept_statuses: Collection[int] = (),
        source: str = "",
    ) -> Fetched:
        """GET ``url``. 2xx and 304 return; so do statuses in ``accept_statuses`` (e.g. 404 for a
        lookup, 400 for arXiv's error feed). Anything else raises after the retries."""
        hdrs = dict(headers or {})
        if etag:
            hdrs["If-None-Match"] = etag
        if last_modified:
            hdrs["If-Modified-Since"] = last_modified
        return self.request(
            "GET", url, params=params, headers=hdrs, accept_statuses=accept_statuses, source=source
        )

    def post_json(
        self,
        url: str,
        body: Any,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        accept_statuses: Collection[int] = (),
        source: str = "",
    ) -> Fetched:
        return self.request(
            "POST",
            url,
            params=params,
            headers=headers,
            json=body,
            accept_statuses=accept_statuses,
            source=source,
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        accept_statuses: Collection[int] = (),
        source: str = "",
    ) -> Fetched:
        host = urlsplit(url).netloc
        query = {k: str(v) for k, v in (params or {}).items()}
        full = httpx.URL(url).copy_merge_params(query) if query else httpx.URL(url)
        shown = str(full)
        attempt = 0
        while True:
            self._wait_turn(host)
            try:
                resp = self._client.request(method, full, headers=headers, json=json)
                # .content reads the whole body: a connection dropped mid-body raises here.
                content = resp.content
            except httpx.TimeoutException as exc:
                problem = f"timed out after {self.settings.request_timeout_s:g} s ({exc!r})"
                wait = None
            except httpx.TransportError as exc:
                problem = f"connection failed: {exc!r}"
                wait = None
            else:
                status = resp.status_code
                shown = str(resp.url)
                if 200 <= status < 300 or status == 304 or status in accept_statuses:
                    return Fetched(
                        shown, status, content, {k.lower(): v for k, v in resp.headers.items()}
                    )
                snippet = content[:200].decode("utf-8", "replace").strip()
                problem = f"HTTP {status}" + (f": {snippet}" if snippet else "")
                if status not in RETRYABLE_STATUSES:
                    raise SourceError(
                        f"{problem} (not retried; check the request)", source=source, location=shown
                    )
                wait = parse_retry_after(resp.headers.get("retry-after"), now=self._now())
                if wait is not None and wait > self.max_retry_after_s:
                    raise SourceError(
                        f"{problem}; server asks to retry after {wait:.0f} s, more than the "
                        f"{self.max_retry_after_s:.0f} s we wait; run again later",
                        source=source,
                        location=shown,
                    )
            if attempt >= self.max_retries:
                raise SourceError(
                    f"gave up after {attempt + 1} attempts; last: {problem}",
                    source=source,
                    location=shown,
                )
            if wait is None:
                wait = self._backoff(attempt)
            log.warning(
                "retrying %s %s in %.1f s (attempt %d of %d): %s",
                method,
                shown,
                wait,
                attempt + 1,
                self.max_retries,
                problem,
                extra={"source": source, "url": shown},
            )
            self._sleep(wait)
            attempt += 1

    # -- internals ----------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * (2**attempt))
        return float(ceiling * self._rng())

    def _wait_turn(self, host: str) -> None:
        interval = self.host_intervals.get(host, self.min_interval_s)
        last = self._last_request.get(host)
        if last is not None and interval > 0:
            remaining = last + interval - self._clock()
            if remaining > 0:
                self._sleep(remaining)
        self._last_request[host] = self._clock()

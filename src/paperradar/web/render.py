"""Templates (Jinja2, autoescaped) and what every route needs from the app: the engine, the
settings and cached facts about the collection."""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from paperradar.engine import Engine
from paperradar.errors import InvalidQuery, NotFound
from paperradar.model import Paper
from paperradar.search.service import Hit
from paperradar.storage.base import PaperFilter
from paperradar.web.cards import paper_card
from paperradar.web.highlight import highlight
from paperradar.web.params import author_url, category_url, external_url, id_path, paper_url

__all__ = [
    "SIMILAR_TTL_S",
    "STATIC_DIR",
    "TRENDING_TTL_S",
    "Renderer",
    "TTLCache",
    "engine_of",
    "renderer_of",
    "similar_of",
    "trending_of",
]

T = TypeVar("T")

TRENDING_TTL_S = 30.0  # trending lists are recomputed at most this often per process
SIMILAR_TTL_S = 60.0  # "similar papers" of one paper, likewise

WEB_DIR = Path(str(resources.files("paperradar") / "web"))
STATIC_DIR = WEB_DIR / "static"
TEMPLATE_DIR = WEB_DIR / "templates"


class TTLCache:
    """Facts that are costly to compute and fine to be seconds old (newest day, trending, similar
    papers): each value is kept ``ttl_s`` seconds, at most ``max_entries`` (least recently used
    go first). Thread-safe; one per process."""

    def __init__(self, ttl_s: float, max_entries: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._values: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: str) -> Any | None:
        """The value if it is there and fresh, else None (nothing is computed)."""
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
            if hit is None or now - hit[0] >= self.ttl_s:
                return None
            self._values.move_to_end(key)
            return hit[1]

    def get(self, key: str, compute: Callable[[], T]) -> T:
        hit = self.peek(key)
        if hit is not None:
            found: T = hit
            return found
        now = time.monotonic()
        value = compute()
        with self._lock:
            self._values[key] = (now, value)
            self._values.move_to_end(key)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)
        return value


def _static_version() -> str:
    h = hashlib.sha1()
    for name in sorted(p.name for p in STATIC_DIR.iterdir()):
        h.update((STATIC_DIR / name).read_bytes())
    return h.hexdigest()[:10]


def _fmt_date(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return f"{value:%d %b %Y}"


def _iso(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def _query_url(path: str, params: dict[str, Any], **changes: Any) -> str:
    """``path`` with ``params`` updated by ``changes``; empty values are left out."""
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


class Renderer:
    def __init__(self, engine: Engine) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.globals.update(
            paper_url=paper_url,
            id_path=id_path,
            author_url=author_url,
            category_url=category_url,
            query_url=_query_url,
            static_version=_static_version(),
            base_url=engine.settings.base_url.rstrip("/"),
        )
        self.env.filters.update(hl=highlight, date=_fmt_date, iso=_iso, safe_url=external_url)
        self.env.globals["card"] = functools.partial(paper_card, fmt_date=_fmt_date, fmt_iso=_iso)

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status)


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def renderer_of(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


def newest_day(request: Request) -> date | None:
    """The publication day of the newest dated paper (cached a few seconds), or None."""

    def compute() -> date | None:
        flt = PaperFilter(published_from=datetime(1900, 1, 1, tzinfo=UTC))
        papers, _ = engine_of(request).papers(flt, sort="published", limit=1)
        if not papers or papers[0].published is None:
            return None
        return papers[0].published.astimezone(UTC).date()

    cache: TTLCache = request.app.state.facts
    return cache.get("newest_day", compute)


def trending_of(request: Request, window: str, limit: int) -> list[Paper]:
    """The window's trending papers, computed at most every ``TRENDING_TTL_S`` seconds."""
    cache: TTLCache = request.app.state.trending
    engine = engine_of(request)
    return cache.get(
        f"{window}:{limit}",
        lambda: engine.trending(window=window, limit=limit),  # type: ignore[arg-type]
    )


def similar_of(
    request: Request, paper_id: str, limit: int, *, compute: bool = True
) -> list[Hit] | None:
    """Papers similar to ``paper_id`` (kept ``SIMILAR_TTL_S`` seconds); with ``compute=False``
    only what is kept (None when nothing is)."""
    cache: TTLCache = request.app.state.similar
    key = f"{limit}:{paper_id}"
    if not compute:
        found: list[Hit] | None = cache.peek(key)
        return found

    def run() -> list[Hit]:
        try:
            return engine_of(request).similar(paper_id, limit=limit)
        except (NotFound, InvalidQuery):
            return []

    return cache.get(key, run)

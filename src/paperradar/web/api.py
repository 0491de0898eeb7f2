"""The JSON API, ``/api/v1``: papers, search, similar, trending, categories, stats.

Errors are ``{"error": {"code", "message"}}`` (see ``web/errors.py``); lists page with opaque
keyset cursors (``next_cursor`` → ``cursor``).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse as _StdJSONResponse
from pydantic import BaseModel, Field

from paperradar.engine import Engine
from paperradar.model import Paper, paper_to_dict
from paperradar.search.service import Hit
from paperradar.storage.base import PaperFilter
from paperradar.web.errors import BadParameter
from paperradar.web.params import check_category, check_source, paper_url, parse_day
from paperradar.web.render import TTLCache, engine_of, trending_of
from paperradar.web.subscribe import subscribe_with


class JSONResponse(_StdJSONResponse):
    """The same compact UTF-8 JSON, encoded by orjson (several times faster than ``json``)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


__all__ = ["paper_json", "router"]

router = APIRouter(prefix="/api/v1", tags=["api"])

Limit = Annotated[int, Query(ge=1, le=200, description="Items per page (1-200).")]
CursorParam = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
]
CATEGORY_SCAN_PAGE = 1000
CATEGORIES_TTL_S = 600.0


def paper_json(request: Request, paper: Paper) -> dict[str, Any]:
    base = engine_of(request).settings.base_url.rstrip("/")
    return {**paper_to_dict(paper), "html_url": base + paper_url(paper.id)}


def hit_json(request: Request, hit: Hit) -> dict[str, Any]:
    pinned = math.isinf(hit.score)
    return {
        "paper": paper_json(request, hit.paper),
        "score": None if pinned else hit.score,
        "pinned": pinned,
        "matched_by": hit.matched_by,
    }


def _day_start(value: str | None, field: str) -> datetime | None:
    day = parse_day(value, field)
    return datetime.combine(day, time(), UTC) if day else None


@router.get("/papers", summary="List papers")
def list_papers(
    request: Request,
    cat: Annotated[
        list[str], Query(description="Category (cs.LG) or archive (cs); repeat to OR.")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    author: Annotated[list[str], Query(description="Author name substring; repeat to OR.")] = [],  # noqa: B006
    source: Annotated[list[str], Query(description="Source that saw the paper.")] = [],  # noqa: B006
    published_from: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive.")] = None,
    published_to: Annotated[str | None, Query(description="YYYY-MM-DD, exclusive.")] = None,
    sort: Literal["published", "first_seen", "upvotes"] = "published",
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> JSONResponse:
    """Papers matching every filter given, newest (or most upvoted) first."""
    flt = PaperFilter(
        categories=[check_category(c) for c in cat if c.strip()],
        authors=[a for a in author if a.strip()],
        sources=[check_source(s) for s in source if s.strip()],
        published_from=_day_start(published_from, "published_from"),
        published_to=_day_start(published_to, "published_to"),
    )
    papers, nxt = engine_of(request).papers(flt, sort=sort, limit=limit, cursor=cursor)
    return JSONResponse({"papers": [paper_json(request, p) for p in papers], "next_cursor": nxt})


@router.get("/papers/{paper_id:path}", summary="One paper")
def get_paper(request: Request, paper_id: str) -> JSONResponse:
    """A paper by any form of its id: arXiv id (any version or URL), DOI, or stored id."""
    return JSONResponse(paper_json(request, engine_of(request).paper(paper_id)))


@router.get("/search", summary="Search")
def search(
    request: Request,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=4000,
            description='Query: terms, "phrases", -exclusions, author:, cat:, year:2020..2024, '
            "since:7d, source:, id:.",
        ),
    ],
    mode: Literal["keyword", "semantic", "hybrid"] | None = None,
    sort: Literal["relevance", "date"] = "relevance",
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> JSONResponse:
    """Hits best first, each with the reason it matched (``matched_by``)."""
    result = engine_of(request).search(q, mode=mode, sort=sort, limit=limit, cursor=cursor)
    return JSONResponse(
        {
            "query": result.query,
            "parsed": str(result.parsed),
            "mode": result.mode,
            "notice": result.notice,
            "took_ms": round(result.took_ms, 2),
            "hits": [hit_json(request, h) for h in result.hits],
            "next_cursor": result.next_cursor,
        }
    )


@router.get("/similar/{paper_id:path}", summary="Similar papers")
def similar(request: Request, paper_id: str, limit: Limit = 10) -> JSONResponse:
    """Papers like this one, best first."""
    hits = engine_of(request).similar(paper_id, limit=limit)
    return JSONResponse({"paper_id": paper_id, "hits": [hit_json(request, h) for h in hits]})


@router.get("/trending", summary="Trending papers")
def trending(
    request: Request,
    window: Literal["day", "week", "month"] = "week",
    limit: Limit = 20,
) -> JSONResponse:
    """The papers of the window with the most reader signal."""
    papers = trending_of(request, window, limit)
    return JSONResponse({"window": window, "papers": [paper_json(request, p) for p in papers]})


def count_categories(engine: Engine) -> list[dict[str, Any]]:
    """Category counts over the whole collection, by walking it in keyset pages."""
    counts: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        papers, cursor = engine.papers(
            PaperFilter(), sort="first_seen", limit=CATEGORY_SCAN_PAGE, cursor=cursor
        )
        for p in papers:
            counts.update(set(p.categories))
        if cursor is None:
            break
    return [{"name": n, "count": c} for n, c in sorted(counts.items(), key=lambda kv: -kv[1])]


@router.get("/categories", summary="Categories")
def categories(request: Request) -> JSONResponse:
    """Every category with its number of papers, most papers first (refreshed every 10 min)."""
    cache: TTLCache = request.app.state.categories
    engine = engine_of(request)
    return JSONResponse({"categories": cache.get("categories", lambda: count_categories(engine))})


@router.get("/stats", summary="Collection statistics")
def stats(request: Request) -> JSONResponse:
    """Counts of papers, abstracts and embeddings; newest paper; papers per source."""
    return JSONResponse(engine_of(request).stats())


class SubscriptionRequest(BaseModel):
    email: str = Field(max_length=254)
    queries: list[str] = Field(default_factory=list, max_length=20)
    categories: list[str] = Field(default_factory=list, max_length=50)
    authors: list[str] = Field(default_factory=list, max_length=50)
    follow: list[str] = Field(default_factory=list, max_length=200)
    trending: bool = False
    frequency: Literal["daily", "weekly"] = "daily"
    send_hour: int = Field(default=7, ge=0, le=23)
    timezone: str = Field(default="UTC", max_length=64)
    max_items: int = Field(default=20, ge=1, le=100)
    weekends: bool = True


@router.post("/subscriptions", summary="Subscribe to a daily digest", status_code=201)
async def subscriptions(request: Request, body: SubscriptionRequest) -> JSONResponse:
    """Ask for an email digest of queries, categories, authors, followed papers or just the
    trending list. A confirmation mail goes to the address (double opt-in); the answer is the
    same whether the address is new, pending or already subscribed."""
    if not (body.queries or body.categories or body.authors or body.follow or body.trending):
        raise BadParameter("queries", "give at least one query or category, or trending: true")
    result = await run_in_threadpool(
        lambda: subscribe_with(
            request,
            body.email,
            body.queries,
            body.categories,
            authors=body.authors,
            follow=body.follow,
            trending=body.trending,
            frequency=body.frequency,
            send_hour=body.send_hour,
            timezone=body.timezone,
            max_items=body.max_items,
            weekends=body.weekends,
        )
    )
    return JSONResponse({"subscribed": True, "result": str(result)}, status_code=201)


health = APIRouter(tags=["ops"])


@health.get("/healthz", summary="Health check")
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers and its migrations are at head (else 503), with the
    queue depth: ``{"status", "database", "migrations": {…}, "queue": {"queued", "running"}}``."""
    body = engine_of(request).health()
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

"""HTML pages: daily listing, search, paper, author, category, trending, subscribe, API docs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paperradar.errors import InvalidQuery
from paperradar.export import bibtex_entry, csl_json, ris_entry
from paperradar.model import Paper
from paperradar.storage.base import PaperFilter, SortKey
from paperradar.web.errors import BadParameter
from paperradar.web.highlight import highlight_terms
from paperradar.web.listing import empty_reason, window_for
from paperradar.web.params import (
    SINCE_CHOICES,
    ListSort,
    View,
    author_url,
    category_url,
    check_category,
    compose_query,
    id_path,
    paper_url,
    parse_day,
    parse_year,
)
from paperradar.web.render import engine_of, newest_day, renderer_of, similar_of, trending_of
from paperradar.web.subscribe import subscribe_with

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
SIMILAR = 8
COMMON_CATEGORIES = (
    "cs.AI",
    "cs.CL",
    "cs.CV",
    "cs.LG",
    "cs.IR",
    "cs.RO",
    "cs.CR",
    "stat.ML",
    "math.OC",
    "eess.AS",
    "q-bio.NC",
    "hep-th",
)
LIST_SORTS: dict[str, str] = {
    "trending": "Trending",
    "newest": "Newest",
    "upvotes": "Most upvoted",
}


def _sort_key(sort: ListSort, dated: bool) -> SortKey:
    # Trending is the engine's reader signal (upvotes) until a trending score is exposed.
    if sort in ("trending", "upvotes"):
        return "upvotes"
    return "published" if dated else "first_seen"


def _feeds(kind: str, **params: str) -> dict[str, str]:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if v)
    suffix = f"?{query}" if query else ""
    return {fmt: f"/feeds/{kind}.{fmt}{suffix}" for fmt in ("rss", "atom")}


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    date: Annotated[str | None, Query(description="A day, YYYY-MM-DD")] = None,
    view: View = "day",
    sort: ListSort = "trending",
    cat: str = "",
    cursor: str | None = None,
) -> Response:
    """The daily listing, with week and month views; 'latest' when papers carry no dates."""
    engine = engine_of(request)
    cat = check_category(cat)
    day = parse_day(date)
    newest = newest_day(request)
    today = datetime.now(UTC).date()
    params: dict[str, Any] = {"view": view, "sort": sort, "cat": cat, "date": ""}
    context: dict[str, Any] = {
        "params": params,
        "sort": sort,
        "cat": cat,
        "sorts": LIST_SORTS,
        "categories": COMMON_CATEGORIES,
        "feeds": _feeds("category", cat=cat) if cat else _feeds("latest"),
        "subscribe": {"q": "", "cat": cat},
    }
    if view == "latest" or newest is None:
        papers, nxt = engine.papers(
            PaperFilter(categories=[cat] if cat else []),
            sort=_sort_key(sort, dated=False),
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        params["view"] = "latest"
        return renderer_of(request).page(
            "home.html",
            view="latest",
            window=None,
            undated=newest is None,
            papers=papers,
            next_cursor=nxt,
            cursor=cursor,
            empty="No papers yet: ingest some (try `paperradar demo`)." if not papers else "",
            **context,
        )
    window = window_for(view, day or newest)
    params["date"] = window.start.isoformat() if day else ""
    papers, nxt = engine.papers(
        PaperFilter(
            categories=[cat] if cat else [],
            published_from=window.start_dt,
            published_to=window.end_dt,
        ),
        sort=_sort_key(sort, dated=True),
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return renderer_of(request).page(
        "home.html",
        view=view,
        window=window,
        undated=False,
        newest=newest,
        papers=papers,
        next_cursor=nxt,
        cursor=cursor,
        empty="" if papers or cursor else empty_reason(window, newest, today, cat),
        **context,
    )


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    q: str = "",
    mode: Literal["keyword", "semantic", "hybrid"] | None = None,
    sort: Literal["relevance", "date"] = "relevance",
    cat: str = "",
    source: str = "",
    year_from: str = "",  # str: an empty form field means "no bound"
    year_to: str = "",
    since: str = "",
    cursor: str | None = None,
) -> Response:
    """Search with the query language and the form's filters; keyset pages."""
    params: dict[str, Any] = {
        "q": q,
        "mode": mode,
        "sort": "" if sort == "relevance" else sort,
        "cat": cat,
        "source": source,
        "year_from": year_from,
        "year_to": year_to,
        "since": since,
    }
    context: dict[str, Any] = {
        "params": params,
        "q": q,
        "sort": sort,
        "since_choices": SINCE_CHOICES,
        "categories": COMMON_CATEGORIES,
        "result": None,
        "error": None,
        "terms": (),
        "cursor": cursor,
        "effective": "",
        "feeds": {},
        "subscribe": {"q": "", "cat": ""},
    }
    renderer = renderer_of(request)
    try:
        effective = compose_query(
            q,
            cat=cat,
            source=source,
            year_from=parse_year(year_from, "year_from"),
            year_to=parse_year(year_to, "year_to"),
            since=since,
        )
        context["effective"] = effective
        if not effective:
            return renderer.page("search.html", **context)
        context["feeds"] = _feeds("search", q=effective)
        context["subscribe"] = {"q": effective, "cat": ""}
        result = engine_of(request).search(effective, mode=mode, sort=sort, limit=20, cursor=cursor)
    except InvalidQuery as exc:
        context["error"] = exc
        return renderer.page("search.html", status=400, **context)
    except BadParameter as exc:
        context["error"] = exc
        return renderer.page("search.html", status=400, **context)
    context["result"] = result
    context["terms"] = highlight_terms(result.parsed)
    return renderer.page("search.html", **context)


def _paper_or_404(request: Request, paper_id: str) -> Paper:
    return engine_of(request).paper(paper_id)


@router.get("/paper/{paper_id:path}", response_class=HTMLResponse)
async def paper_page(
    request: Request, paper_id: Annotated[str, Path()], saved: bool = False
) -> Response:
    """One paper: metadata, versions, similar papers, citation exports. Similar papers are
    shown at once when this process has them (``SIMILAR_TTL_S``); otherwise the page names
    ``/similar/ID`` and app.js loads it into place (a plain link without script).

    Runs on the event loop: its work is one primary-key read and a render, about a
    millisecond, less than the hand-off to the thread pool a sync route pays."""
    paper = _paper_or_404(request, paper_id)
    similar = similar_of(request, paper.id, SIMILAR, compute=False)
    return renderer_of(request).page(
        "paper.html",
        paper=paper,
        similar=similar,
        saved=saved,
        bibtex=bibtex_entry(paper),
        extra=_shown_extra(paper),
        feeds={},
        subscribe={"q": "", "cat": ""},
    )


@router.get("/similar/{paper_id:path}", response_class=HTMLResponse)
def similar_page(
    request: Request, paper_id: Annotated[str, Path()], fragment: bool = False
) -> Response:
    """Papers similar to one paper: a page, or (``fragment=true``) the cards the paper page
    loads into its "Similar papers" box."""
    paper = _paper_or_404(request, paper_id)
    similar = similar_of(request, paper.id, SIMILAR) or []
    if fragment:
        return renderer_of(request).page("_similar.html", similar=similar)
    return renderer_of(request).page(
        "collection.html",
        heading=paper.title,
        kind="similar to",
        request_path="/similar/" + id_path(paper.id),
        intro=f"Papers like {paper.title}.",
        papers=[h.paper for h in similar],
        next_cursor=None,
        cursor=None,
        params={},
        feeds={},
        subscribe={"q": "", "cat": ""},
    )


def _shown_extra(paper: Paper) -> list[tuple[str, str]]:
    labels = {
        "journal_ref": "Journal reference",
        "comment": "Comment",
        "submitter": "Submitted by",
        "ai_summary": "Summary",
        "ai_keywords": "Keywords",
    }
    out = []
    for key, label in labels.items():
        value = paper.extra.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value:
            out.append((label, str(value)))
    return out


CITE_FORMATS: dict[str, tuple[str, str]] = {
    "bibtex": ("application/x-bibtex; charset=utf-8", "bib"),
    "ris": ("application/x-research-info-systems; charset=utf-8", "ris"),
    "csl-json": ("application/vnd.citationstyles.csl+json; charset=utf-8", "json"),
}


@router.get("/cite/{fmt}/{paper_id:path}")
def cite(request: Request, fmt: str, paper_id: str) -> Response:
    """A citation file for one paper (BibTeX, RIS or CSL-JSON), as a download."""
    if fmt not in CITE_FORMATS:
        raise BadParameter("fmt", f"use one of {', '.join(CITE_FORMATS)}")
    paper = _paper_or_404(request, paper_id)
    if fmt == "bibtex":
        body = bibtex_entry(paper)
    elif fmt == "ris":
        body = ris_entry(paper)
    else:
        body = json.dumps([csl_json(paper)], ensure_ascii=False, indent=2) + "\n"
    media, ext = CITE_FORMATS[fmt]
    stem = re.sub(r"[^A-Za-z0-9.\-]+", "_", paper.id)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'},
    )


@router.get("/author/{name:path}", response_class=HTMLResponse)
def author_page(request: Request, name: str, cursor: str | None = None) -> Response:
    """Papers by an author (name match, newest first)."""
    name = " ".join(name.split())
    if not name:
        raise BadParameter("name", "give an author name")
    papers, nxt = engine_of(request).papers(
        PaperFilter(authors=[name]), sort="published", limit=PAGE_SIZE, cursor=cursor
    )
    quoted = '"' + name.replace('"', "") + '"'
    return renderer_of(request).page(
        "collection.html",
        heading=name,
        kind="author",
        request_path=author_url(name),
        intro=f"Papers with an author named {name}.",
        papers=papers,
        next_cursor=nxt,
        cursor=cursor,
        params={},
        feeds=_feeds("search", q=f"author:{quoted}"),
        subscribe={"q": f"author:{quoted}", "cat": ""},
    )


@router.get("/category/{cat}", response_class=HTMLResponse)
def category_page(
    request: Request, cat: str, sort: ListSort = "newest", cursor: str | None = None
) -> Response:
    """Papers of a category (prefix match: ``cs`` covers ``cs.LG``), newest first."""
    cat = check_category(cat, "category")
    papers, nxt = engine_of(request).papers(
        PaperFilter(categories=[cat]), sort=_sort_key(sort, True), limit=PAGE_SIZE, cursor=cursor
    )
    return renderer_of(request).page(
        "collection.html",
        heading=cat,
        kind="category",
        request_path=category_url(cat),
        intro=f"Papers in {cat}{' and its subcategories' if '.' not in cat else ''}.",
        papers=papers,
        next_cursor=nxt,
        cursor=cursor,
        params={"sort": sort},
        feeds=_feeds("category", cat=cat),
        subscribe={"q": "", "cat": cat},
    )


TRENDING_WINDOWS = {"day": "Today", "week": "This week", "month": "This month"}


@router.get("/trending", response_class=HTMLResponse)
def trending_page(request: Request, window: Literal["day", "week", "month"] = "week") -> Response:
    """The papers with the most reader signal in a window."""
    papers = trending_of(request, window, 30)
    return renderer_of(request).page(
        "trending.html",
        window=window,
        windows=TRENDING_WINDOWS,
        papers=papers,
        feeds=_feeds("trending", window=window),
        subscribe={"q": "", "cat": ""},
    )


@router.post("/save")
async def save_paper(request: Request) -> Response:
    """The paper page's "Save" button: a reader signal for trending, then back to the paper."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    paper_id = form.get("paper", [""])[0].strip()
    if not paper_id:
        raise BadParameter("paper", "give the id of the paper to save")
    engine = engine_of(request)
    found = await run_in_threadpool(engine.paper, paper_id)
    await run_in_threadpool(engine.record_event, found.id, "save")
    return RedirectResponse(f"{paper_url(found.id)}?saved=true", status_code=303)


@router.post("/subscribe", response_class=HTMLResponse)
async def subscribe_form(request: Request) -> Response:
    """The subscribe box of every listing posts here."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    email, q, cat = (form.get(k, [""])[0] for k in ("email", "q", "cat"))
    await run_in_threadpool(subscribe_with, request, email, [q], [cat])
    return renderer_of(request).page("subscribed.html", email=email, q=q, cat=cat)


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """The API reference, rendered from the OpenAPI document (no CDN, no script)."""
    spec = request.app.openapi()
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": op.get("parameters", []),
                }
            )
    return renderer_of(request).page(
        "docs.html", spec=spec, operations=operations, feeds={}, subscribe=None
    )

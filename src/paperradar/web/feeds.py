"""RSS 2.0 and Atom feeds: latest papers, a category, any search query, trending.

Feeds are built as XML trees (never by string pasting), so every title and abstract is escaped;
characters XML cannot carry at all are dropped. Item ids are tag URIs made from the paper id,
stable across hosts and runs. Responses carry an ETag and answer ``If-None-Match`` with 304.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from paperradar.model import Paper
from paperradar.storage.base import PaperFilter
from paperradar.web.errors import BadParameter
from paperradar.web.params import check_category, external_url, paper_url
from paperradar.web.render import engine_of, trending_of

__all__ = ["Feed", "atom_xml", "router", "rss_xml"]

router = APIRouter(tags=["feeds"])

FEED_SIZE = 50
TAG_AUTHORITY = "tag:paperradar.org,2024:"
ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MEDIA = {"rss": "application/rss+xml", "atom": "application/atom+xml"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

ET.register_namespace("atom", ATOM_NS)
ET.register_namespace("dc", DC_NS)


@dataclass(frozen=True, slots=True)
class Feed:
    key: str  # stable feed identity, e.g. "latest" or "search?q=..."
    title: str
    description: str
    html_url: str  # the page the feed mirrors
    self_url: str
    papers: Sequence[Paper]
    base_url: str


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def paper_guid(paper: Paper) -> str:
    return TAG_AUTHORITY + "paper/" + quote(paper.id, safe="/:@-._~")


def _when(p: Paper) -> datetime:
    return p.published or p.first_seen or EPOCH


def _updated(p: Paper) -> datetime:
    return p.updated or p.published or p.first_seen or EPOCH


def _newest(feed: Feed) -> datetime:
    return max((_updated(p) for p in feed.papers), default=EPOCH)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _text(text)
    return el


def rss_xml(feed: Feed) -> bytes:
    rss = ET.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", feed.title)
    _sub(channel, "link", feed.html_url)
    _sub(channel, "description", feed.description)
    _sub(
        channel,
        f"{{{ATOM_NS}}}link",
        href=feed.self_url,
        rel="self",
        type=MEDIA["rss"],
    )
    _sub(channel, "lastBuildDate", format_datetime(_newest(feed), usegmt=True))
    _sub(channel, "generator", "paperradar")
    for p in feed.papers:
        item = _sub(channel, "item")
        _sub(item, "title", p.title)
        _sub(item, "link", feed.base_url + paper_url(p.id))
        _sub(item, "guid", paper_guid(p), isPermaLink="false")
        _sub(item, "description", p.abstract or p.title)
        _sub(item, "pubDate", format_datetime(_when(p).astimezone(UTC), usegmt=True))
        if p.authors:
            _sub(item, f"{{{DC_NS}}}creator", ", ".join(p.author_names))
        for cat in p.categories:
            _sub(item, "category", cat)
    data: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return data


def atom_xml(feed: Feed) -> bytes:
    # unprefixed Atom (<feed xmlns="...">): some feed readers understand no other spelling.
    # Plain tag names under a literal xmlns attribute serialize as exactly that.
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "id", TAG_AUTHORITY + "feed/" + quote(feed.key, safe="/:?=&"))
    _sub(root, "title", feed.title)
    _sub(root, "subtitle", feed.description)
    _sub(root, "updated", _newest(feed).astimezone(UTC).isoformat())
    _sub(root, "link", rel="self", href=feed.self_url, type=MEDIA["atom"])
    _sub(root, "link", rel="alternate", href=feed.html_url, type="text/html")
    author = _sub(root, "author")
    _sub(author, "name", "paperradar")
    _sub(root, "generator", "paperradar")
    for p in feed.papers:
        entry = _sub(root, "entry")
        _sub(entry, "id", paper_guid(p))
        _sub(entry, "title", p.title, type="text")
        _sub(entry, "updated", _updated(p).astimezone(UTC).isoformat())
        _sub(entry, "published", _when(p).astimezone(UTC).isoformat())
        _sub(
            entry,
            "link",
            rel="alternate",
            type="text/html",
            href=feed.base_url + paper_url(p.id),
        )
        if external_url(p.abs_url):
            _sub(entry, "link", rel="related", href=p.abs_url or "")
        for name in p.author_names:
            a = _sub(entry, "author")
            _sub(a, "name", name)
        for cat in p.categories:
            _sub(entry, "category", term=cat)
        _sub(entry, "summary", p.abstract or p.title, type="text")
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def feed_response(request: Request, body: bytes, fmt: str) -> Response:
    etag = _etag(body)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=f"{MEDIA[fmt]}; charset=utf-8", headers=headers)


@router.get("/feeds/{kind}.{fmt}", summary="RSS 2.0 or Atom feed")
def feed(
    request: Request,
    kind: Literal["latest", "category", "search", "trending"],
    fmt: str,
    cat: str = "",
    q: str = "",
    window: Literal["day", "week", "month"] = "week",
) -> Response:
    """``/feeds/latest.rss``, ``/feeds/category.atom?cat=cs.LG``, ``/feeds/search.rss?q=…``,
    ``/feeds/trending.atom?window=week``: the newest 50 papers of each."""
    if fmt not in MEDIA:
        raise HTTPException(404, f"no {fmt!r} feeds: use .rss or .atom")
    engine = engine_of(request)
    base = engine.settings.base_url.rstrip("/")
    self_url = f"{base}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
    if kind == "latest":
        papers, _ = engine.papers(PaperFilter(), sort="first_seen", limit=FEED_SIZE)
        key, title, html = "latest", "paperradar: latest papers", f"{base}/?view=latest"
    elif kind == "category":
        cat = check_category(cat)
        if not cat:
            raise BadParameter("cat", "give a category, like cat=cs.LG")
        papers, _ = engine.papers(PaperFilter(categories=[cat]), sort="first_seen", limit=FEED_SIZE)
        key, title = f"category/{cat}", f"paperradar: {cat}"
        html = f"{base}/category/{quote(cat)}"
    elif kind == "search":
        if not q.strip():
            raise BadParameter("q", "give a search query, like q=diffusion")
        papers = [h.paper for h in engine.search(q, sort="date", limit=FEED_SIZE).hits]
        key, title = f"search?q={q}", f"paperradar: {q}"
        html = f"{base}/search?{urlencode({'q': q})}"
    else:
        papers = trending_of(request, window, FEED_SIZE)
        when = {"day": "today", "week": "this week", "month": "this month"}[window]
        key, title = f"trending/{window}", f"paperradar: trending {when}"
        html = f"{base}/trending?window={window}"
    data = Feed(key, title, f"{title} (newest {FEED_SIZE})", html, self_url, papers, base)
    body = rss_xml(data) if fmt == "rss" else atom_xml(data)
    return feed_response(request, body, fmt)

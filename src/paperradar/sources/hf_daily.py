"""Hugging Face Daily Papers (``huggingface.co/api/daily_papers?date=YYYY-MM-DD``).

:func:`parse_hf_daily` reads the JSON list of ``{"paper": {…}, …}`` items (every field optional,
the schema changed many times) and also a flat ``/api/papers/{id}`` object. A list whose items are
strings (an archive that stored Python ``repr`` s) is rejected with a :class:`SourceError`.
:func:`fetch_hf_daily` fetches one day or a range of days, one batch per page, with checkpoint
``{"date": "YYYY-MM-DD", "page": N}`` (the last page stored; ``page`` is ``None`` once the day
is complete).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from paperradar.config import Settings
from paperradar.errors import InvalidId, SourceError
from paperradar.model import Author, Paper, ParseProblem, normalize_text, parse_paper_id
from paperradar.sources import Batch, Record
from paperradar.sources.http import PoliteClient
from paperradar.sources.timestamps import parse_iso_utc

__all__ = ["SOURCE", "fetch_hf_daily", "parse_hf_daily"]

SOURCE = "hf_daily"
PAGE_LIMIT = 100


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _item_to_record(item: dict[str, Any], where: str) -> Record:
    paper = _dict(item.get("paper")) or item  # daily item, or a flat /api/papers/{id} object
    raw_id = _str(paper.get("id")).strip()
    try:
        pid = parse_paper_id(raw_id)
    except InvalidId:
        return ParseProblem(SOURCE, where, f"paper id is not an arXiv id: {raw_id!r}")
    title = normalize_text(_str(paper.get("title")) or _str(item.get("title")))
    if not title:
        return ParseProblem(SOURCE, where, f"paper {raw_id} has no title")
    authors = []
    raw_authors = paper.get("authors")
    for a in raw_authors if isinstance(raw_authors, list) else []:
        name = normalize_text(_str(_dict(a).get("name")))
        if name:
            authors.append(Author(name))
    links: dict[str, str] = {"hf": f"https://huggingface.co/papers/{pid.key}"}
    if repo := _str(paper.get("githubRepo")).strip():
        links["code"] = repo
    if page := _str(paper.get("projectPage")).strip():
        links["project"] = page
    extra: dict[str, Any] = {}
    featured = _str(paper.get("submittedOnDailyAt")) or (
        # Before March 2025 the top-level publishedAt was the featured time (FORMATS.md §4).
        _str(item.get("publishedAt")) if "paper" in item else ""
    )
    if (when := parse_iso_utc(featured)) is not None:
        extra["hf_featured_at"] = when.isoformat()
    submitter = _dict(paper.get("submittedOnDailyBy")) or _dict(item.get("submittedBy"))
    if name := _str(submitter.get("user")) or _str(submitter.get("name")):
        extra["submitter"] = name
    if summary := normalize_text(_str(paper.get("ai_summary"))):
        extra["ai_summary"] = summary
    keywords = paper.get("ai_keywords")
    if isinstance(keywords, list) and keywords:
        extra["ai_keywords"] = [normalize_text(k) for k in keywords if isinstance(k, str)]
    if org := _str(_dict(paper.get("organization")).get("fullname")) or _str(
        _dict(item.get("organization")).get("fullname")
    ):
        extra["organization"] = org
    if discussion := _str(paper.get("discussionId")):
        extra["hf_discussion_id"] = discussion
    if thumb := _str(item.get("thumbnail")):
        extra["thumbnail"] = thumb
    comments = _int(item.get("numComments"))
    return Paper.from_ids(
        ids=[raw_id],
        title=title,
        source=SOURCE,
        abstract=normalize_text(_str(paper.get("summary")) or _str(item.get("summary"))),
        authors=authors,
        published=parse_iso_utc(_str(paper.get("publishedAt"))),
        links=links,
        upvotes=_int(paper.get("upvotes")),
        comments=comments,
        stars=_int(paper.get("githubStars")),
        extra=extra,
    )


def parse_hf_daily(data: bytes, location: str = "") -> Iterator[Record]:
    """Papers of one daily_papers response (or one ``/api/papers/{id}`` object)."""
    try:
        doc = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise SourceError(f"not valid JSON: {exc}", source=SOURCE, location=location) from exc
    if isinstance(doc, dict) and "id" in doc:
        doc = [doc]
    if not isinstance(doc, list):
        raise SourceError(
            f"expected a JSON list of daily papers, got {type(doc).__name__}",
            source=SOURCE,
            location=location,
        )
    if doc and not any(isinstance(x, dict) for x in doc):
        kind = type(doc[0]).__name__
        hint = (
            " (Python repr strings: a corrupted archive, re-download it)"
            if isinstance(doc[0], str) and doc[0].lstrip().startswith("{'")
            else ""
        )
        raise SourceError(f"items are {kind}, not objects{hint}", source=SOURCE, location=location)
    for i, item in enumerate(doc):
        where = f"{location} item {i}".strip()
        if not isinstance(item, dict):
            yield ParseProblem(SOURCE, where, f"item is {type(item).__name__}, not an object")
            continue
        yield _item_to_record(item, where)


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise SourceError(f"not a date (YYYY-MM-DD): {value!r}", source=SOURCE) from exc


def fetch_hf_daily(
    client: PoliteClient,
    settings: Settings,
    *,
    date: date | str | None = None,
    since: date | str | None = None,
    until: date | str | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """Fetch one ``date`` (default today, UTC) or every day from ``since`` to ``until`` inclusive
    (``until`` defaults to today). A checkpoint ``{"date": d, "page": p}`` resumes after page
    ``p`` of day ``d`` (``page`` None: after the whole day). Re-fetching a day is harmless: counts
    such as upvotes only grow and ingest keeps the maximum."""
    today = datetime.now(UTC).date()
    if date is not None:
        first = last = _day(date)
    else:
        first = _day(since) if since is not None else today
        last = _day(until) if until is not None else today
    next_page = 0
    if checkpoint and checkpoint.get("date"):
        done_day = _day(str(checkpoint["date"]))
        done_page = checkpoint.get("page")
        if done_page is None:
            first = max(first, done_day + timedelta(days=1))
        elif done_day >= first:
            first, next_page = done_day, int(done_page) + 1
    day = first
    while day <= last:
        page = next_page
        while True:
            resp = client.get(
                settings.hf_url,
                params={"date": day.isoformat(), "limit": PAGE_LIMIT, "p": page},
                source=SOURCE,
            )
            records = list(parse_hf_daily(resp.content, resp.url))
            more = len(records) >= PAGE_LIMIT
            yield Batch(
                SOURCE,
                records,
                {"date": day.isoformat(), "page": page if more else None},
                resp.url,
            )
            if not more:
                break
            page += 1
        next_page = 0
        day += timedelta(days=1)

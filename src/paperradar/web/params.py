"""Request parameters shared by pages, API and feeds: checked here, named in errors."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from urllib.parse import quote

from paperradar.web.errors import BadParameter

__all__ = [
    "SINCE_CHOICES",
    "ListSort",
    "View",
    "author_url",
    "category_url",
    "check_category",
    "check_source",
    "compose_query",
    "external_url",
    "id_path",
    "paper_url",
    "parse_day",
    "parse_year",
]

View = Literal["day", "week", "month", "latest"]
ListSort = Literal["trending", "newest", "upvotes"]
SINCE_CHOICES: dict[str, str] = {
    "": "any time",
    "7d": "past week",
    "1m": "past month",
    "1y": "past year",
}

_CATEGORY = re.compile(r"[A-Za-z][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)?")
_SOURCE = re.compile(r"[A-Za-z0-9_\-]+")


def check_category(value: str, field: str = "cat") -> str:
    value = value.strip()
    if value and not _CATEGORY.fullmatch(value):
        raise BadParameter(field, f"{value[:40]!r} is not a category like cs.LG or math")
    return value


def check_source(value: str, field: str = "source") -> str:
    value = value.strip()
    if value and not _SOURCE.fullmatch(value):
        raise BadParameter(field, f"{value[:40]!r} is not a source name like arxiv or hf_daily")
    return value


def parse_day(value: str | None, field: str = "date") -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadParameter(field, f"{value[:40]!r} is not a date like 2024-03-15") from None


def parse_year(value: str, field: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise BadParameter(field, f"{value[:40]!r} is not a year like 2024")
    return int(value)


def compose_query(
    q: str,
    *,
    cat: str = "",
    source: str = "",
    year_from: int | None = None,
    year_to: int | None = None,
    since: str = "",
) -> str:
    """The user's query with the search form's filters appended in the query language.

    The user's text comes first so an ``InvalidQuery`` position still points into it.
    """
    parts = [q.strip()] if q.strip() else []
    if cat := check_category(cat):
        parts.append(f"cat:{cat}")
    if source := check_source(source):
        parts.append(f"source:{source}")
    for name, year in (("year_from", year_from), ("year_to", year_to)):
        if year is not None and not 1900 <= year <= 2999:
            raise BadParameter(name, f"{year} is not a year between 1900 and 2999")
    if year_from is not None and year_to is not None and year_from > year_to:
        raise BadParameter("year_from", f"{year_from} is after year_to {year_to}")
    if year_from is not None or year_to is not None:
        parts.append(f"year:{year_from or ''}..{year_to or ''}")
    if since:
        if since not in SINCE_CHOICES:
            raise BadParameter("since", f"use one of {', '.join(k for k in SINCE_CHOICES if k)}")
        parts.append(f"since:{since}")
    return " ".join(parts)


def id_path(paper_id: str) -> str:
    """A paper id as a URL path tail; ids keep their slashes and colons (hep-th/9901001)."""
    return quote(paper_id, safe="/:@-._~")


def paper_url(paper_id: str) -> str:
    """The page of a paper."""
    return "/paper/" + id_path(paper_id)


def external_url(url: str | None) -> str:
    """``url`` when it is an http(s) link, else "": data from sources never becomes a
    ``javascript:`` or ``data:`` link."""
    if not url:
        return ""
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    return url if scheme in ("http", "https") else ""


def author_url(name: str) -> str:
    return "/author/" + quote(name, safe="")


def category_url(cat: str) -> str:
    return "/category/" + quote(cat, safe=".-")

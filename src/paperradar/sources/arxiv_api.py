"""arXiv API (``export.arxiv.org/api/query``): Atom pages of search results or id lookups.

* :func:`parse_arxiv_page` / :func:`parse_arxiv_atom` are pure: bytes in, records out. The error
  feed arXiv sends for bad input (HTTP 400, or 200 on the old backend: one entry whose id is
  ``…/api/errors#…``) raises :class:`SourceError` carrying arXiv's message; an empty result is
  simply no records.
* :func:`fetch_arxiv` pages with ``start`` and yields one :class:`Batch` per page, each with the
  checkpoint ``{"start": N, "total": T}`` to resume after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from paperradar.config import Settings
from paperradar.errors import InvalidId, SourceError
from paperradar.model import Author, Paper, ParseProblem, Version, normalize_text, parse_paper_id
from paperradar.sources import Batch, Record
from paperradar.sources.http import PoliteClient
from paperradar.sources.timestamps import parse_iso_utc
from paperradar.sources.xml_safe import parse_xml, text_of

__all__ = ["SOURCE", "ArxivPage", "fetch_arxiv", "parse_arxiv_atom", "parse_arxiv_page"]

SOURCE = "arxiv_api"
MAX_PAGE_SIZE = 2000  # arXiv's per-call limit (API user manual)

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_OS = "{http://a9.com/-/spec/opensearch/1.1/}"


@dataclass(slots=True)
class ArxivPage:
    """One response: its records and the OpenSearch paging numbers (None when absent)."""

    records: list[Record] = field(default_factory=list)
    total: int | None = None
    start: int | None = None
    per_page: int | None = None
    updated: datetime | None = None

    @property
    def entries(self) -> int:
        return len(self.records)


def _int_or_none(el: Element | None) -> int | None:
    try:
        return int(text_of(el).strip())
    except ValueError:
        return None


def _entry_to_record(entry: Element, where: str) -> Record:
    raw_id = text_of(entry.find(f"{_ATOM}id")).strip()
    try:
        pid = parse_paper_id(raw_id)
    except InvalidId:
        return ParseProblem(SOURCE, where, f"entry id is not an arXiv id: {raw_id!r}")
    if pid.kind != "arxiv":
        return ParseProblem(SOURCE, where, f"entry id is not an arXiv id: {raw_id!r}")
    title = normalize_text(text_of(entry.find(f"{_ATOM}title")))
    if not title:
        return ParseProblem(SOURCE, where, f"entry {pid.key} has no title")
    authors: list[Author] = []
    for a in entry.iter(f"{_ATOM}author"):
        name = normalize_text(text_of(a.find(f"{_ATOM}name")))
        if name:
            affs = [normalize_text(text_of(x)) for x in a.findall(f"{_ARXIV}affiliation")]
            authors.append(Author(name, [x for x in affs if x]))
    categories: list[str] = []
    for c in entry.findall(f"{_ATOM}category"):
        term = (c.get("term") or "").strip()
        if term and term not in categories:
            categories.append(term)
    prim_el = entry.find(f"{_ARXIV}primary_category")
    primary = (prim_el.get("term") or "").strip() if prim_el is not None else ""
    if primary and primary not in categories:
        categories.insert(0, primary)
    links: dict[str, str] = {}
    for link in entry.findall(f"{_ATOM}link"):
        href = (link.get("href") or "").strip()
        if not href:
            continue
        if link.get("rel") == "alternate":
            links["abs"] = href
        elif link.get("title") == "pdf":
            links["pdf"] = href
        elif link.get("title") == "doi":
            links["doi"] = href
    published = parse_iso_utc(text_of(entry.find(f"{_ATOM}published")))
    updated = parse_iso_utc(text_of(entry.find(f"{_ATOM}updated")))
    versions: list[Version] = []
    if pid.version:
        if pid.version > 1 and published:
            versions.append(Version(1, published))
        versions.append(Version(pid.version, updated if pid.version > 1 else published))
    dois = normalize_text(text_of(entry.find(f"{_ARXIV}doi"))).split()
    extra: dict[str, Any] = {}
    for key, tag in (("comment", "comment"), ("journal_ref", "journal_ref")):
        value = normalize_text(text_of(entry.find(f"{_ARXIV}{tag}")))
        if value:
            extra[key] = value
    if len(dois) > 1:
        extra["dois"] = [d.lower() for d in dois]
    return Paper.from_ids(
        ids=[raw_id],
        title=title,
        source=SOURCE,
        abstract=normalize_text(text_of(entry.find(f"{_ATOM}summary"))),
        authors=authors,
        doi=dois[0].lower() if dois else None,
        categories=categories,
        primary_category=primary or (categories[0] if categories else None),
        published=published,
        updated=updated,
        links=links,
        versions=versions,
        extra=extra,
    )


def parse_arxiv_page(data: bytes, location: str = "") -> ArxivPage:
    """One API response. Raises :class:`SourceError` on malformed XML or arXiv's error feed."""
    root = parse_xml(data, source=SOURCE, location=location)
    if root.tag != f"{_ATOM}feed":
        raise SourceError(
            f"expected an Atom <feed>, got <{root.tag}>", source=SOURCE, location=location
        )
    entries = root.findall(f"{_ATOM}entry")
    for entry in entries:
        eid = text_of(entry.find(f"{_ATOM}id")).strip()
        if "/api/errors" in eid:
            message = normalize_text(text_of(entry.find(f"{_ATOM}summary"))) or eid
            raise SourceError(f"arXiv API error: {message}", source=SOURCE, location=location)
    page = ArxivPage(
        total=_int_or_none(root.find(f"{_OS}totalResults")),
        start=_int_or_none(root.find(f"{_OS}startIndex")),
        per_page=_int_or_none(root.find(f"{_OS}itemsPerPage")),
        updated=parse_iso_utc(text_of(root.find(f"{_ATOM}updated"))),
    )
    for i, entry in enumerate(entries):
        page.records.append(_entry_to_record(entry, f"{location} entry {i}".strip()))
    return page


def parse_arxiv_atom(data: bytes, location: str = "") -> Iterator[Record]:
    """The records of one API response (see :func:`parse_arxiv_page`)."""
    yield from parse_arxiv_page(data, location).records


def fetch_arxiv(
    client: PoliteClient,
    settings: Settings,
    *,
    query: str | None = None,
    ids: Sequence[str] | None = None,
    max_results: int | None = None,
    page_size: int = 100,
    checkpoint: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """Page through a search (``query``, arXiv syntax) and/or an ``id_list``.

    Yields one batch per page with checkpoint ``{"start": next_start, "total": total}``; pass the
    last stored checkpoint back to resume after it. ``max_results`` caps the papers fetched in
    this run (counted from the checkpoint's start).
    """
    if not query and not ids:
        raise SourceError("give a query or ids to fetch", source=SOURCE)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    start = int((checkpoint or {}).get("start", 0))
    fetched = 0
    while True:
        want = page_size if max_results is None else min(page_size, max_results - fetched)
        if want <= 0:
            return
        params: dict[str, str | int] = {"start": start, "max_results": want}
        if query:
            params["search_query"] = query
        if ids:
            params["id_list"] = ",".join(ids)
        resp = client.get(
            settings.arxiv_api_url, params=params, accept_statuses={400}, source=SOURCE
        )
        page = parse_arxiv_page(resp.content, resp.url)  # the error feed raises here
        if resp.status == 400:
            raise SourceError("HTTP 400 without an error feed", source=SOURCE, location=resp.url)
        n = page.entries
        total = page.total if page.total is not None else start + n
        start += n
        fetched += n
        yield Batch(SOURCE, page.records, {"start": start, "total": total}, resp.url)
        # An empty page before the end is a known arXiv hiccup: stop; a re-run resumes here.
        if n == 0 or start >= total:
            return

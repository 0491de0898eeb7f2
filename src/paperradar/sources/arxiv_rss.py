"""arXiv announcement feeds (``rss.arxiv.org/rss/<cats>`` RSS 2.0 and ``/atom/<cats>`` Atom).

:func:`parse_arxiv_rss` reads either flavour. Each item gives the versioned id (from ``guid`` /
``id`` or the description prefix), title, abstract (cut after ``"Abstract: "``), authors
(``dc:creator``), categories (the first is the primary), DOI and journal reference, and the
announcement: ``extra["announce_type"]`` ∈ new / cross / replace / replace-cross and
``extra["announced"]`` (ISO date-time of ``pubDate``). ``published`` is set only for ``new``
items (announcement ≈ submission of v1).

:func:`fetch_arxiv_rss` does one conditional GET; checkpoint ``{"etag": …, "last_modified": …}``
(whichever the server sent); a 304 yields an empty batch and keeps the checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element

from paperradar.config import Settings
from paperradar.errors import InvalidId, SourceError
from paperradar.model import Author, Paper, ParseProblem, Version, normalize_text, parse_paper_id
from paperradar.sources import Batch, Record
from paperradar.sources.http import PoliteClient
from paperradar.sources.timestamps import parse_timestamp
from paperradar.sources.xml_safe import parse_xml, text_of

__all__ = ["ANNOUNCE_TYPES", "SOURCE", "fetch_arxiv_rss", "parse_arxiv_rss"]

SOURCE = "arxiv_rss"
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_PREFIX = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?", re.IGNORECASE
)


def _authors(creator: str) -> list[Author]:
    # The feed joins names with ", " and appends affiliations in parentheses.
    out: list[Author] = []
    depth = 0
    current: list[str] = []
    affs: list[str] = []
    buf: list[str] = []
    for ch in creator + ",":
        if ch == "(":
            depth += 1
            if depth == 1:
                buf = []
                continue
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                affs.append(normalize_text("".join(buf)))
                continue
        if depth:
            buf.append(ch)
        elif ch == ",":
            name = normalize_text("".join(current))
            if name.lower().startswith("and "):
                name = name[4:]
            if name:
                out.append(Author(name, [a for a in affs if a]))
            current, affs = [], []
        else:
            current.append(ch)
    return out


def _item(el: Element, atom: bool, where: str) -> Record:
    def t(tag: str) -> str:
        return normalize_text(text_of(el.find(tag)))

    description = text_of(el.find(f"{_ATOM}summary" if atom else "description"))
    prefix = _PREFIX.match(description)
    raw_id = t(f"{_ATOM}id" if atom else "guid") or (prefix["id"] if prefix else "")
    raw_id = raw_id.removeprefix("oai:arXiv.org:")
    try:
        pid = parse_paper_id(raw_id)
    except InvalidId:
        return ParseProblem(SOURCE, where, f"item id is not an arXiv id: {raw_id!r}")
    if pid.kind != "arxiv":
        return ParseProblem(SOURCE, where, f"item id is not an arXiv id: {raw_id!r}")
    title = t(f"{_ATOM}title" if atom else "title")
    if not title:
        return ParseProblem(SOURCE, where, f"{pid.key}: no title")
    abstract = description[prefix.end() :] if prefix else description
    announce = t(f"{_ARXIV}announce_type") or (prefix["type"].lower() if prefix else "")
    if atom:
        cats = [(c.get("term") or "").strip() for c in el.findall(f"{_ATOM}category")]
        link_el = el.find(f"{_ATOM}link")
        link = (link_el.get("href") or "") if link_el is not None else ""
        announced = parse_timestamp(t(f"{_ATOM}published"))
    else:
        cats = [normalize_text(text_of(c)) for c in el.findall("category")]
        link = t("link")
        announced = parse_timestamp(t("pubDate"))
    categories = list(dict.fromkeys(c for c in cats if c))
    extra: dict[str, Any] = {}
    if announce:
        extra["announce_type"] = announce
    if announced:
        extra["announced"] = announced.isoformat()
    if journal := t(f"{_ARXIV}journal_reference"):
        extra["journal_ref"] = journal
    if rights := t(f"{_DC}rights"):
        extra["license"] = rights
    dois = t(f"{_ARXIV}DOI").lower().split()
    links = {"abs": link} if link else {}
    return Paper.from_ids(
        ids=[raw_id],
        title=title,
        source=SOURCE,
        abstract=normalize_text(abstract),
        authors=_authors(text_of(el.find(f"{_DC}creator"))),
        doi=dois[0] if dois else None,
        categories=categories,
        primary_category=categories[0] if categories else None,
        published=announced if announce == "new" and (pid.version or 1) == 1 else None,
        links=links,
        versions=[Version(pid.version)] if pid.version else [],
        extra=extra,
    )


def parse_arxiv_rss(data: bytes, location: str = "") -> Iterator[Record]:
    """Items of one RSS 2.0 or Atom announcement feed. An empty feed (weekend) yields nothing."""
    root = parse_xml(data, source=SOURCE, location=location)
    if root.tag == "rss":
        channel = root.find("channel")
        items = channel.findall("item") if channel is not None else []
        atom = False
    elif root.tag == f"{_ATOM}feed":
        items = root.findall(f"{_ATOM}entry")
        atom = True
    else:
        raise SourceError(
            f"expected <rss> or Atom <feed>, got <{root.tag}>", source=SOURCE, location=location
        )
    for i, el in enumerate(items):
        yield _item(el, atom, f"{location} item {i}".strip())


def fetch_arxiv_rss(
    client: PoliteClient,
    settings: Settings,
    *,
    categories: Sequence[str] | str,
    checkpoint: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """One conditional GET of ``{settings.rss_url}/cat1+cat2``; yields exactly one batch."""
    cats = [categories] if isinstance(categories, str) else list(categories)
    if not cats:
        raise SourceError("no categories given", source=SOURCE)
    url = f"{settings.rss_url.rstrip('/')}/{'+'.join(cats)}"
    cp = dict(checkpoint or {})
    resp = client.get(
        url, etag=cp.get("etag"), last_modified=cp.get("last_modified"), source=SOURCE
    )
    if resp.not_modified:
        yield Batch(SOURCE, [], None, resp.url)
        return
    records = list(parse_arxiv_rss(resp.content, resp.url))
    yield Batch(SOURCE, records, resp.validators, resp.url)

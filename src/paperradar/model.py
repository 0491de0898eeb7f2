"""Plain data: papers, authors, ids, and the problems parsers report.

A paper's key is its *canonical id*: the arXiv id without version (``2403.01234``,
``hep-th/9901001``), else the DOI lower-cased (``doi:10.1000/xyz``), else a stable hash of the
normalized title (``title:3f2a…``). Every source maps to this key.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from paperradar.errors import InvalidId

__all__ = [
    "Author",
    "IdKind",
    "Paper",
    "PaperId",
    "ParseProblem",
    "Version",
    "canonical_id",
    "normalize_text",
    "paper_from_dict",
    "paper_to_dict",
    "parse_paper_id",
    "title_key",
]

IdKind = Literal["arxiv", "doi", "title"]

# New-style arXiv ids: YYMM.NNNN (2007-2014) or YYMM.NNNNN (2015-), optional vN.
_NEW_ID = re.compile(r"(?P<id>\d{4}\.\d{4,5})(?:v(?P<v>\d+))?")
# Old-style: archive[.SUBJ]/YYMMNNN, optional vN. Archives are lower-case letters and dashes.
_OLD_ID = re.compile(
    r"(?P<arch>[a-zA-Z][a-zA-Z\-]*)(?:\.(?P<subj>[A-Za-z]{2}))?/(?P<num>\d{7})(?:v(?P<v>\d+))?"
)
_ARXIV_URL = re.compile(
    r"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html|format|ps)/(?P<rest>.+?)"
    r"(?:\.pdf)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
_PLAIN_NEW_ID = re.compile(r"(\d\d)(\d\d)\.(\d{4,5})(?:v(\d+))?")
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_URL = re.compile(r"^(?:https?://)?(?:dx\.)?doi\.org/(?P<doi>.+)$", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(?P<id>.+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PaperId:
    """A recognised identifier: its kind, the canonical key and, for arXiv, the version."""

    kind: IdKind
    key: str
    version: int | None = None

    @property
    def arxiv_id(self) -> str | None:
        return self.key if self.kind == "arxiv" else None

    @property
    def doi(self) -> str | None:
        return self.key.removeprefix("doi:") if self.kind == "doi" else None


def _match_arxiv(text: str) -> PaperId | None:
    m = _NEW_ID.fullmatch(text)
    if m:
        yymm = int(m["id"][2:4])
        if not 1 <= yymm <= 12:
            return None
        digits = len(m["id"].split(".")[1])
        year = int(m["id"][:2])
        # 5-digit sequence numbers started in 2015 (1501.00001); 4-digit ones ended in 2014.
        if (digits == 5) != (year >= 15):
            return None
        return PaperId("arxiv", m["id"], int(m["v"]) if m["v"] else None)
    m = _OLD_ID.fullmatch(text)
    if m:
        month = int(m["num"][2:4])
        if not 1 <= month <= 12:
            return None
        return PaperId("arxiv", f"{m['arch'].lower()}/{m['num']}", int(m["v"]) if m["v"] else None)
    return None


def parse_paper_id(text: str) -> PaperId:
    """Recognise an arXiv id (new or old style, any URL or prefix form) or a DOI.

    Raises :class:`InvalidId` when ``text`` is neither.
    """
    if text.isascii():
        plain = _plain_new_id(text)
        if plain is not None:  # the common case
            return PaperId("arxiv", plain[0], plain[1])
        if "/" not in text and "." not in text and text.strip():
            # every form (URL, prefix, old- or new-style id, DOI) has a "/" or a "."
            raise InvalidId(f"not an arXiv id or DOI: {text!r}")
    s = unicodedata.normalize("NFKC", text).strip()
    if not s:
        raise InvalidId("empty id")
    url = _ARXIV_URL.match(s)
    if url:
        s = url["rest"]
    lowered = s.lower()
    for prefix in ("arxiv:", "arxiv/", "arxiv.org:"):
        if lowered.startswith(prefix):
            s = s[len(prefix) :].strip()
            lowered = s.lower()
            break
    found = _match_arxiv(s)
    if found:
        return found
    doi_url = _DOI_URL.match(s)
    if doi_url:
        s = doi_url["doi"]
    elif lowered.startswith("doi:"):
        s = s[4:].strip()
    s = s.rstrip(".,;")
    arxiv_doi = _ARXIV_DOI.match(s)
    if arxiv_doi:
        found = _match_arxiv(arxiv_doi["id"])
        if found:
            return found
    if _DOI.match(s):
        return PaperId("doi", "doi:" + s.lower())
    raise InvalidId(f"not an arXiv id or DOI: {text!r}")


def _plain_new_id(text: str) -> tuple[str, int | None] | None:
    """(key, version) of a bare, valid new-style id such as ``2403.01234v2`` (the rules of
    ``_match_arxiv``), else None."""
    m = _PLAIN_NEW_ID.fullmatch(text)
    if m is None:
        return None
    yy, mm, seq, v = m.groups()
    if not 1 <= int(mm) <= 12 or (len(seq) == 5) != (int(yy) >= 15):
        return None
    return text[: m.end(3)], int(v) if v else None


def _paper_id_or_none(text: str) -> PaperId | None:
    """``parse_paper_id(text)``, or None where it raises InvalidId (without raising, mostly)."""
    if text.isascii() and "/" not in text and "." not in text and text.strip():
        return None  # see parse_paper_id: no id form lacks both "/" and "."
    try:
        return parse_paper_id(text)
    except InvalidId:
        return None


def normalize_text(text: str) -> str:
    """Unicode NFC with runs of whitespace collapsed to one space."""
    if text.isascii():
        # ASCII is NFC already; most text has single spaces only (a few scans, no split)
        # (every ASCII whitespace but the space is a control character: not printable)
        if not text.isprintable() or "  " in text or text[:1] == " " or text[-1:] == " ":
            return " ".join(text.split())
        return text
    return " ".join(unicodedata.normalize("NFC", text).split())


_NOT_ALNUM = re.compile(r"[\W_]+")
_ASCII_NOT_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())


@functools.lru_cache(maxsize=1 << 16)
def title_key(title: str) -> str:
    """The last-resort key: a hash of the title folded to lower-case letters and digits
    (accents dropped, punctuation and spacing ignored)."""
    if title.isascii():
        # the same letters as below, without the regex: ASCII folds to lower case
        ascii_letters = title.encode().lower().translate(None, _ASCII_NOT_ALNUM)
        if ascii_letters:
            return "title:" + hashlib.sha1(ascii_letters).hexdigest()[:16]
    folded = title.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    letters = _NOT_ALNUM.sub("", folded)
    if not letters:
        raise InvalidId(f"title has no letters or digits to key on: {title!r}")
    return "title:" + hashlib.sha1(letters.encode()).hexdigest()[:16]


def canonical_id(*, ids: list[str] | tuple[str, ...] = (), title: str = "") -> PaperId:
    """The key of a paper from whatever ids a source gave, preferring arXiv, then DOI, then title."""
    parsed: list[PaperId] = []
    for raw in ids:
        if not raw:
            continue
        try:
            parsed.append(parse_paper_id(raw))
        except InvalidId:
            continue
    for kind in ("arxiv", "doi"):
        for p in parsed:
            if p.kind == kind:
                return p
    return PaperId("title", title_key(title))


@dataclass(slots=True)
class Author:
    name: str
    affiliations: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Version:
    version: int
    date: datetime | None = None
    size: str | None = None


@dataclass(slots=True)
class Paper:
    """One paper as paperradar knows it. Sources fill what they know; ingest merges the rest.

    ``counts`` holds upvotes/comments/stars/citations; ``links`` holds abs/pdf/code/project;
    ``extra`` keeps source-specific fields that add something (journal_ref, comment, ai_summary,
    ai_keywords, submitter, announce_type …).
    """

    id: str
    title: str
    abstract: str = ""
    authors: list[Author] = field(default_factory=list)
    arxiv_id: str | None = None
    version: int | None = None
    doi: str | None = None
    categories: list[str] = field(default_factory=list)
    primary_category: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    links: dict[str, str] = field(default_factory=dict)
    upvotes: int | None = None
    comments: int | None = None
    stars: int | None = None
    citations: int | None = None
    sources: list[str] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None

    @classmethod
    def from_ids(
        cls, *, ids: list[str] | tuple[str, ...] = (), title: str, source: str, **fields: Any
    ) -> Paper:
        """Build a paper whose key is derived from ``ids`` (else the title), tagged with ``source``."""
        parsed: list[PaperId] = []
        for raw in ids:
            if raw:
                try:
                    parsed.append(parse_paper_id(raw))
                except InvalidId:
                    continue
        pid = next((p for p in parsed if p.kind == "arxiv"), None)
        pid = pid or next((p for p in parsed if p.kind == "doi"), None)
        pid = pid or PaperId("title", title_key(title))
        doi = fields.pop("doi", None)
        if doi is None:
            doi = next((p.doi for p in parsed if p.kind == "doi"), None)
        return cls(
            id=pid.key,
            title=normalize_text(title),
            arxiv_id=pid.arxiv_id,
            version=fields.pop("version", None) or pid.version,
            doi=doi,
            sources=[source],
            **fields,
        )

    @property
    def author_names(self) -> list[str]:
        return [a.name for a in self.authors]

    @property
    def abs_url(self) -> str | None:
        if "abs" in self.links:
            return self.links["abs"]
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    @property
    def pdf_url(self) -> str | None:
        if "pdf" in self.links:
            return self.links["pdf"]
        return f"https://arxiv.org/pdf/{self.arxiv_id}" if self.arxiv_id else None


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Something a parser could not turn into a paper: where it was and what was wrong."""

    source: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.location}: {self.message}"


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def paper_to_dict(p: Paper) -> dict[str, Any]:
    """The JSON shape of a paper: our JSONL export format and the API's paper object."""
    return {
        "id": p.id,
        "arxiv_id": p.arxiv_id,
        "version": p.version,
        "doi": p.doi,
        "title": p.title,
        "abstract": p.abstract,
        "authors": [{"name": a.name, "affiliations": a.affiliations} for a in p.authors],
        "categories": p.categories,
        "primary_category": p.primary_category,
        "published": _iso(p.published),
        "updated": _iso(p.updated),
        "links": p.links,
        "upvotes": p.upvotes,
        "comments": p.comments,
        "stars": p.stars,
        "citations": p.citations,
        "sources": p.sources,
        "versions": [
            {"version": v.version, "date": _iso(v.date), "size": v.size} for v in p.versions
        ],
        "extra": p.extra,
        "first_seen": _iso(p.first_seen),
    }


@functools.lru_cache(maxsize=4096)
def _iso_date(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _date(value: Any, field_name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be an ISO date string, not {type(value).__name__}")
    return _iso_date(value)


def _count(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field_name} must be a non-negative integer")
    return value


def _strs(value: Any, field_name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        for v in value:
            if not isinstance(v, str):
                break
        else:
            return list(value)
    raise ValueError(f"{field_name} must be a list of strings")


def paper_from_dict(d: dict[str, Any], *, source: str = "jsonl") -> Paper:
    """Inverse of :func:`paper_to_dict`; tolerant of missing fields. Raises ValueError/InvalidId
    with the field named when a value is unusable.

    (What :meth:`Paper.from_ids` does, inlined: this is the hot loop of ``ingest jsonl``.)"""
    if not isinstance(d, dict):
        raise ValueError("a paper must be a JSON object")
    get = d.get
    title = get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("missing or empty 'title'")
    abstract = get("abstract") or ""
    if not isinstance(abstract, str):
        raise ValueError("'abstract' must be a string")
    authors: list[Author] = []
    for a in get("authors") or []:
        if isinstance(a, str):
            authors.append(Author(normalize_text(a)))
        elif isinstance(a, dict) and isinstance(a.get("name"), str):
            affs = a.get("affiliations")
            authors.append(
                Author(
                    normalize_text(a["name"]), [] if affs is None else _strs(affs, "affiliations")
                )
            )
        else:
            raise ValueError("each author must be a name or {'name': ...}")
    ids = [str(x) for x in (get("arxiv_id"), get("doi"), get("id")) if x]
    sources = _strs(get("sources"), "sources") or [source]
    links = get("links") or {}
    extra = get("extra") or {}
    if not isinstance(links, dict) or not isinstance(extra, dict):
        raise ValueError("'links' and 'extra' must be objects")
    versions = [
        Version(int(v["version"]), _date(v.get("date"), "versions.date"), v.get("size"))
        for v in get("versions") or []
    ]
    abstract = normalize_text(abstract)
    categories = _strs(get("categories"), "categories")
    primary_category = get("primary_category")
    published = _date(get("published"), "published")
    updated = _date(get("updated"), "updated")
    links = {str(k): str(v) for k, v in links.items()}
    upvotes = _count(get("upvotes"), "upvotes")
    comments = _count(get("comments"), "comments")
    stars = _count(get("stars"), "stars")
    citations = _count(get("citations"), "citations")
    version = get("version")
    arxiv: tuple[str, int | None] | None = None
    doi: str | None = None
    for raw in ids:
        plain = _plain_new_id(raw) if raw.isascii() else None
        if plain is not None:
            arxiv = arxiv or plain
            continue
        parsed = _paper_id_or_none(raw)
        if parsed is None:
            continue
        if parsed.kind == "arxiv":
            arxiv = arxiv or (parsed.key, parsed.version)
        elif doi is None:
            doi = parsed.doi
    if arxiv is not None:
        key, arxiv_id, version = arxiv[0], arxiv[0], version or arxiv[1]
    elif doi is not None:
        key, arxiv_id, version = "doi:" + doi, None, version or None
    else:
        key, arxiv_id, version = title_key(title), None, version or None
    return Paper(
        id=key,
        title=normalize_text(title),
        abstract=abstract,
        authors=authors,
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
        categories=categories,
        primary_category=primary_category,
        published=published,
        updated=updated,
        links=links,
        upvotes=upvotes,
        comments=comments,
        stars=stars,
        citations=citations,
        sources=sources,
        versions=versions,
        extra=extra,
    )

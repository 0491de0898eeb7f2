"""The search query language: parse what a user types into a small, frozen AST.

Syntax (whitespace separates items)::

    diffusion transformer          bare terms (ranked with OR semantics: more matches rank higher)
    "masked autoencoder"           a phrase
    -gan  -"style transfer"        exclusions (a term or a phrase)
    title:attention                a term that must occur in the title (abstract: likewise)
    title:"attention is all"       ... or a phrase
    author:lecun author:"Yann LeCun"   author filter (several author: filters OR together)
    cat:cs.LG  cat:cs              arXiv category, prefix match on a category boundary
    year:2023  year:2020..2024  year:2020..  year:..2024
    since:7d  since:2w  since:3m  since:1y  since:2025-01-31
    source:hf_daily                the source that saw the paper
    id:2403.01234                  any arXiv id or DOI form ``parse_paper_id`` accepts
    a OR b                         accepted; terms are OR-ed for ranking anyway

Filters of the same field OR together; different fields AND together. ``title:``/``abstract:``
terms are all required. ``parse_query`` raises :class:`InvalidQuery` (message + 0-based position)
for an unknown field, an unbalanced quote, an empty field value, a bad year or ``since`` value.
Empty queries, queries of stop words only or of exclusions only are valid: the engine decides what
they mean. Very long queries are truncated (``MAX_QUERY_CHARS``, ``MAX_TERMS``), never rejected.

This module sits in the bottom layer (next to ``model``) so that both ``storage`` (which compiles
the AST to FTS5) and ``search`` can use it.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from paperradar.errors import InvalidId, InvalidQuery
from paperradar.model import parse_paper_id

__all__ = [
    "FIELDS",
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "FieldTerm",
    "Query",
    "RelativeTime",
    "SinceValue",
    "YearRange",
    "parse_query",
]

FIELDS: tuple[str, ...] = ("title", "abstract", "author", "cat", "year", "since", "source", "id")
MAX_QUERY_CHARS = 1000
MAX_TERMS = 64

TextField = Literal["title", "abstract"]
TimeUnit = Literal["d", "w", "m", "y"]

_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_YEAR = re.compile(r"\d{4}")
_YEAR_RANGE = re.compile(r"(?P<start>\d{4})?\.\.(?P<end>\d{4})?")
_RELATIVE = re.compile(r"(?P<count>\d{1,6})(?P<unit>[dwmy])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CATEGORY = re.compile(r"[A-Za-z][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]*)?")
_SOURCE = re.compile(r"[A-Za-z0-9_\-]+")
_UNIT_NAMES = {"d": "days", "w": "weeks", "m": "months", "y": "years"}


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """A word or phrase that must occur in one column (``title:x``, ``abstract:"x y"``)."""

    field: TextField
    text: str

    def __str__(self) -> str:
        return f"{self.field}:{_quote_if_needed(self.text)}"


@dataclass(frozen=True, slots=True)
class YearRange:
    """Inclusive publication-year range; ``None`` is an open end."""

    start: int | None
    end: int | None

    def __contains__(self, year: object) -> bool:
        if not isinstance(year, int):
            return False
        return (self.start is None or year >= self.start) and (self.end is None or year <= self.end)

    def __str__(self) -> str:
        if self.start is not None and self.start == self.end:
            return str(self.start)
        return f"{'' if self.start is None else self.start}..{'' if self.end is None else self.end}"


@dataclass(frozen=True, slots=True)
class RelativeTime:
    """``since:7d`` and friends: a count of days, weeks, calendar months or years before now."""

    count: int
    unit: TimeUnit

    def cutoff(self, now: datetime) -> datetime:
        """The earliest moment this covers, relative to ``now`` (clamped to ``datetime.min``)."""
        try:
            if self.unit == "d":
                return now - timedelta(days=self.count)
            if self.unit == "w":
                return now - timedelta(weeks=self.count)
            months = self.count if self.unit == "m" else 12 * self.count
            index = now.year * 12 + (now.month - 1) - months
            year, month = divmod(index, 12)
            month += 1
            day = min(now.day, calendar.monthrange(year, month)[1])
            return now.replace(year=year, month=month, day=day)
        except (OverflowError, ValueError):
            return datetime.min.replace(tzinfo=now.tzinfo)

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


SinceValue = RelativeTime | date


def _since_str(value: SinceValue) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query. Every field is a tuple in the order the user wrote it.

    ``truncated`` says the input was cut to the length limits; it does not take part in equality.
    """

    terms: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded_terms: tuple[str, ...] = ()
    excluded_phrases: tuple[str, ...] = ()
    field_terms: tuple[FieldTerm, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    years: tuple[YearRange, ...] = ()
    since: tuple[SinceValue, ...] = ()
    sources: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    truncated: bool = field(default=False, compare=False)

    @property
    def free_text(self) -> str:
        """Terms, phrases and title/abstract field terms as plain text (the embedding query)."""
        return " ".join([*self.terms, *self.phrases, *(ft.text for ft in self.field_terms)])

    @property
    def has_text(self) -> bool:
        """Whether there is anything positive to rank on (terms, phrases or field terms)."""
        return bool(self.terms or self.phrases or self.field_terms)

    @property
    def has_exclusions(self) -> bool:
        return bool(self.excluded_terms or self.excluded_phrases)

    @property
    def has_filters(self) -> bool:
        return bool(
            self.authors or self.categories or self.years or self.since or self.sources or self.ids
        )

    @property
    def is_empty(self) -> bool:
        return not (self.has_text or self.has_filters or self.excluded_terms)

    def __str__(self) -> str:
        parts: list[str] = [*self.terms]
        parts += [f'"{p}"' for p in self.phrases]
        parts += [str(ft) for ft in self.field_terms]
        parts += [f"-{t}" for t in self.excluded_terms]
        parts += [f'-"{p}"' for p in self.excluded_phrases]
        parts += [f"author:{_quote_if_needed(a)}" for a in self.authors]
        parts += [f"cat:{c}" for c in self.categories]
        parts += [f"year:{y}" for y in self.years]
        parts += [f"since:{_since_str(s)}" for s in self.since]
        parts += [f"source:{s}" for s in self.sources]
        parts += [f"id:{i}" for i in self.ids]
        return " ".join(parts)


def _quote_if_needed(text: str) -> str:
    if not text or any(ch.isspace() for ch in text) or text.startswith("-"):
        return f'"{text}"'
    return text


def _clean(text: str) -> str:
    """NFC with whitespace runs collapsed; quotes never survive into values."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass(slots=True)
class _Builder:
    terms: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    excluded_terms: list[str] = field(default_factory=list)
    excluded_phrases: list[str] = field(default_factory=list)
    field_terms: list[FieldTerm] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    years: list[YearRange] = field(default_factory=list)
    since: list[SinceValue] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    count: int = 0
    truncated: bool = False

    def room(self) -> bool:
        if self.count >= MAX_TERMS:
            self.truncated = True
            return False
        self.count += 1
        return True

    def build(self) -> Query:
        return Query(
            terms=tuple(self.terms),
            phrases=tuple(self.phrases),
            excluded_terms=tuple(self.excluded_terms),
            excluded_phrases=tuple(self.excluded_phrases),
            field_terms=tuple(self.field_terms),
            authors=tuple(self.authors),
            categories=tuple(self.categories),
            years=tuple(self.years),
            since=tuple(self.since),
            sources=tuple(self.sources),
            ids=tuple(self.ids),
            truncated=self.truncated,
        )


class _Parser:
    def __init__(self, original: str) -> None:
        self.original = original
        self.text = original[:MAX_QUERY_CHARS]
        self.cut = len(original) > MAX_QUERY_CHARS
        self.pos = 0
        self.out = _Builder(truncated=self.cut)

    def error(self, message: str, position: int) -> InvalidQuery:
        return InvalidQuery(message, position, self.original)

    def parse(self) -> Query:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif ch == '"':
                phrase = self.read_quoted()
                if phrase and self.out.room():
                    self.out.phrases.append(phrase)
            elif ch == "-":
                self.read_exclusion()
            else:
                self.read_word()
        return self.out.build()

    def read_quoted(self) -> str | None:
        """Read ``"..."`` starting at a quote; ``None`` if cut off by truncation."""
        start = self.pos
        end = self.text.find('"', start + 1)
        if end < 0:
            if self.cut:
                self.pos = len(self.text)
                return _clean(self.text[start + 1 :])
            raise self.error('unbalanced quote: add the closing "', start)
        self.pos = end + 1
        return _clean(self.text[start + 1 : end])

    def read_bare(self) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and not text[self.pos].isspace() and text[self.pos] != '"':
            self.pos += 1
        return unicodedata.normalize("NFC", text[start : self.pos])

    def read_exclusion(self) -> None:
        start = self.pos
        self.pos += 1
        if self.pos >= len(self.text) or self.text[self.pos].isspace():
            return  # a lone dash excludes nothing
        if self.text[self.pos] == '"':
            phrase = self.read_quoted()
            if phrase and self.out.room():
                self.out.excluded_phrases.append(phrase)
            return
        word = self.read_bare()
        m = _FIELD_PREFIX.match(word)
        if m and m[1].lower() in FIELDS:
            raise self.error(
                f'cannot exclude a {m[1].lower()}: filter; exclude words or "phrases" instead',
                start,
            )
        if self.out.room():
            self.out.excluded_terms.append(word)

    def read_word(self) -> None:
        start = self.pos
        m = _FIELD_PREFIX.match(self.text, self.pos)
        if m is None:
            word = self.read_bare()
            if word == "OR":
                return  # OR is the ranking semantics already
            if self.out.room():
                self.out.terms.append(word)
            return
        name = m[1].lower()
        if name not in FIELDS:
            raise self.error(
                f"unknown field {m[1]!r}; valid fields are {', '.join(f + ':' for f in FIELDS)}"
                " (or quote the text to search for it)",
                start,
            )
        self.pos = m.end()
        value_pos = self.pos
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            value = self.read_quoted()
        else:
            value = self.read_bare()
        if not value:
            if self.cut and self.pos >= len(self.text):
                return
            raise self.error(f"empty value for {name}:; write {name}:VALUE", value_pos)
        self.add_field(name, value, value_pos)

    def add_field(self, name: str, value: str, pos: int) -> None:
        out = self.out
        if not out.room():
            return
        if name in ("title", "abstract"):
            text_field: TextField = "title" if name == "title" else "abstract"
            out.field_terms.append(FieldTerm(text_field, _clean(value)))
        elif name == "author":
            out.authors.append(_clean(value))
        elif name == "cat":
            if not _CATEGORY.fullmatch(value):
                raise self.error(f"bad category {value!r}; write e.g. cat:cs.LG or cat:cs", pos)
            out.categories.append(value)
        elif name == "year":
            out.years.append(self.parse_year(value, pos))
        elif name == "since":
            out.since.append(self.parse_since(value, pos))
        elif name == "source":
            if not _SOURCE.fullmatch(value):
                raise self.error(f"bad source {value!r}; write e.g. source:hf_daily", pos)
            out.sources.append(value.lower())
        else:
            try:
                out.ids.append(parse_paper_id(value).key)
            except InvalidId:
                raise self.error(
                    f"not an arXiv id or DOI: {value!r}; write e.g. id:2403.01234", pos
                ) from None

    def parse_year(self, value: str, pos: int) -> YearRange:
        if _YEAR.fullmatch(value):
            return YearRange(int(value), int(value))
        m = _YEAR_RANGE.fullmatch(value)
        if m is None or (m["start"] is None and m["end"] is None):
            raise self.error(
                f"bad year {value!r}; write year:2023, year:2020..2024, year:2020.. or year:..2024",
                pos,
            )
        start = int(m["start"]) if m["start"] else None
        end = int(m["end"]) if m["end"] else None
        if start is not None and end is not None and start > end:
            raise self.error(f"year range {value!r} starts after it ends", pos)
        return YearRange(start, end)

    def parse_since(self, value: str, pos: int) -> SinceValue:
        m = _RELATIVE.fullmatch(value)
        if m:
            count = int(m["count"])
            if count == 0:
                raise self.error("since: needs a positive count, e.g. since:7d", pos)
            unit: TimeUnit = m["unit"]  # type: ignore[assignment]
            return RelativeTime(count, unit)
        if _ISO_DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(
            f"bad since value {value!r}; write since:7d, since:2w, since:3m, since:1y "
            "or since:2025-01-31",
            pos,
        )


def parse_query(text: str) -> Query:
    """Parse a search query. Raises :class:`InvalidQuery` with a 0-based position on bad syntax."""
    return _Parser(text).parse()

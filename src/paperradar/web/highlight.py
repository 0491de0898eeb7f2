"""Mark the words of a query in a title or abstract: escape first, then wrap matches in <mark>."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from markupsafe import Markup, escape

from paperradar.querylang import Query

__all__ = ["highlight", "highlight_terms"]

_WORD = re.compile(r"\w+")
_SUFFIXES = ("ing", "es", "ed", "s")


def highlight_terms(query: Query) -> tuple[str, ...]:
    """The words worth marking: terms, phrase words and title/abstract terms, not exclusions."""
    words: list[str] = []
    for text in (*query.terms, *query.phrases, *(ft.text for ft in query.field_terms)):
        words += _WORD.findall(text.casefold())
    seen: dict[str, None] = {}
    for w in words:
        if len(w) >= 2:
            seen.setdefault(_stem(w), None)
    return tuple(seen)


def _stem(word: str) -> str:
    """A crude stem so ``models`` marks ``model`` and ``modeling`` (the index stems too)."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=256)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})\w*", re.IGNORECASE)


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """``text`` HTML-escaped, with each word starting with one of ``terms`` in ``<mark>``."""
    if not terms or not text:
        return escape(text)
    out: list[str] = []
    last = 0
    for m in _pattern(tuple(terms)).finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(Markup("<mark>%s</mark>") % m.group())
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)

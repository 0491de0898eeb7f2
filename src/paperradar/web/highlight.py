"""Mark the words of a query in a title or abstract: escape first, then wrap matches in <mark>."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from markupsafe import Markup, escape

from paperradar.querylang import Query

__all__ = ["highlight", "highlight_terms"]

_WORD = re.compile(r"\w+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9_]+")
_WORD_REST = re.compile(r"\w*")
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
    """Words starting with a term, in HTML-escaped text. Escaping changes only ``&<>"'``, which
    are not word characters, so the words of the text are the words of its escaped form, plus
    the entity names (``&amp;``, ``&#39;``): a word right after ``&`` or ``&#`` is one of those
    (a ``&`` of the text itself became ``&amp;``) and is never marked."""
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?<!&)(?<!&#)(?:{alternatives})\w*", re.IGNORECASE)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _mark_ascii(text: str, terms: tuple[str, ...]) -> str:
    """What ``_pattern(terms).sub`` marks, for ASCII text and terms, found with ``str.find`` on
    the lower-cased text (the regular expression with IGNORECASE visits every character: ~0.1 ms
    an abstract). A match is a whole word: one starting with a term, not an entity name."""
    low = text.lower()
    starts: set[int] = set()
    for term in {t.lower() for t in terms}:
        i = low.find(term)
        while i >= 0:
            if (
                (i == 0 or not _is_word(low[i - 1]))
                and (i < 1 or low[i - 1] != "&")
                and (i < 2 or low[i - 2 : i] != "&#")
            ):
                starts.add(i)
            i = low.find(term, i + 1)
    if not starts:
        return text
    out: list[str] = []
    last = 0
    for start in sorted(starts):
        end = _WORD_REST.match(text, start).end()  # type: ignore[union-attr]
        out += (text[last:start], "<mark>", text[start:end], "</mark>")
        last = end
    out.append(text[last:])
    return "".join(out)


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """``text`` HTML-escaped, with each word starting with one of ``terms`` in ``<mark>``."""
    if not terms or not text:
        return escape(text)
    # One escape of the whole text and one pass: a page of 20 abstracts full of matches made
    # hundreds of small escapes and Markup objects per abstract.
    escaped = str(escape(text))
    key = tuple(terms)
    if escaped.isascii() and all(_ASCII_WORD.fullmatch(t) for t in key):
        return Markup(_mark_ascii(escaped, key))
    return Markup(_pattern(key).sub(r"<mark>\g<0></mark>", escaped))

"""Compile a parsed :class:`~paperradar.querylang.Query` into SQLite FTS5 terms.

SQLite's keyword index is now tantivy (``keyword_index.py``, which compiles the same AST by the
same rules); what stays in use here: ``compile_query`` (its ``match`` says whether a query has
anything positive to rank), the stop words and tokens PostgreSQL's ``pgfts`` shares, and the FTS5
table that migration 0006's downgrade recreates.

Pure functions: no connection here. The keyword index was one FTS5 table::

    papers_fts(title, abstract, authors)      -- see CREATE_FTS_TABLE / FTS_TOKENIZER

ranked with ``bm25(papers_fts, *BM25_WEIGHTS)`` (lower is better, as FTS5 returns it).

How a query becomes a MATCH expression (chosen by measurement, ``benchmarks/keyword_quality.py``):

* free terms are OR-ed (natural-language queries such as SciFact claims would match nothing with
  AND); stop words (``STOP_WORDS``) are dropped from that OR: they cost the most postings and
  add nothing to BM25; a hyphenated or dotted word (``COVID-19``) becomes an FTS5 phrase;
* "phrases", ``title:``/``abstract:`` terms and ``author:`` filters are required (AND); several
  ``author:`` values OR together;
* ``-exclusions`` become ``NOT``; a query with exclusions but nothing positive gets
  ``exclude_match`` for the caller to subtract (FTS5 has no unary NOT);
* every piece of user text is an FTS5 string (``"..."`` with ``"`` doubled, NUL removed), so no
  user input can produce an FTS5 syntax error.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from paperradar.querylang import Query, RelativeTime, YearRange

__all__ = [
    "BM25_WEIGHTS",
    "CREATE_FTS_TABLE",
    "FTS_COLUMNS",
    "FTS_TABLE",
    "FTS_TOKENIZER",
    "MAX_OR_TERMS",
    "STOP_WORDS",
    "CompiledQuery",
    "bm25_expression",
    "category_matches",
    "compile_highlight_match",
    "compile_match",
    "compile_query",
    "fts_string",
    "fts_tokens",
    "ranking_words",
]

FTS_TABLE = "papers_fts"
FTS_COLUMNS: tuple[str, str, str] = ("title", "abstract", "authors")
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
CREATE_FTS_TABLE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
    f"{', '.join(FTS_COLUMNS)}, tokenize = '{FTS_TOKENIZER}')"
)
# bm25() column weights, in FTS_COLUMNS order (title, abstract, authors).
BM25_WEIGHTS: tuple[float, float, float] = (1.0, 1.0, 1.0)
# At most this many distinct tokens go into the ranking OR (long queries cost time, not quality).
MAX_OR_TERMS = 32

# English function words. Dropped from the ranking OR only; phrases keep them.
STOP_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)

_TOKEN = re.compile(r"[^\W_]+")


def fts_tokens(text: str) -> list[str]:
    """About the tokens ``unicode61 remove_diacritics 2`` sees: folded letter/digit runs."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _TOKEN.findall(stripped)


def fts_string(text: str) -> str:
    """``text`` as an FTS5 string literal (a phrase of its tokens); never an FTS5 syntax error."""
    return '"' + text.replace("\x00", "").replace('"', '""') + '"'


def _phrase(text: str, column: str | None = None) -> str | None:
    if not fts_tokens(text):
        return None
    literal = fts_string(text)
    return f"{{{column}}} : {literal}" if column else literal


def _any(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def ranking_words(query: Query) -> list[str]:
    """The free terms that rank, in query order: those that are a lone stop word or tokenize to
    nothing are left out, and so is a term with the same tokens as an earlier one. Every keyword
    backend ranks by these (each caps them at MAX_OR_TERMS after compiling)."""
    seen: set[str] = set()
    out: list[str] = []
    for term in query.terms:
        tokens = fts_tokens(term)
        if not tokens or (len(tokens) == 1 and tokens[0] in STOP_WORDS):
            continue
        key = " ".join(tokens)
        if key not in seen:
            seen.add(key)
            out.append(term)
    return out


def _ranking_terms(query: Query) -> list[str]:
    """The free terms as FTS5 strings, at most MAX_OR_TERMS."""
    return [fts_string(term) for term in ranking_words(query)][:MAX_OR_TERMS]


def _required(query: Query) -> list[str]:
    parts = [p for p in (_phrase(text) for text in query.phrases) if p]
    parts += [p for p in (_phrase(ft.text, ft.field) for ft in query.field_terms) if p]
    authors = [p for p in (_phrase(a, "authors") for a in query.authors) if p]
    if authors:
        parts.append(_any(authors))
    return parts


def _excluded(query: Query) -> list[str]:
    parts = [p for p in (_phrase(t) for t in query.excluded_terms) if p]
    parts += [p for p in (_phrase(t) for t in query.excluded_phrases) if p]
    return parts


def compile_match(query: Query, *, require_all: bool = False) -> str | None:
    """The FTS5 MATCH expression for ranking ``query``; ``None`` when nothing positive is left.

    ``require_all`` makes every free term required (AND), for "does this paper match" checks
    such as digests; the default ORs them, which is what BM25 ranking needs.
    """
    required = _required(query)
    terms = _ranking_terms(query)
    if require_all:
        required += terms
        clauses = required
    elif terms and required:
        # The OR group holds one required clause too, so it never rejects a row the required
        # clauses accept; its terms still count in bm25().
        clauses = [*required, _any([*terms, required[0]])]
    else:
        clauses = required or ([_any(terms)] if terms else [])
    if not clauses:
        return None
    positive = clauses[0] if len(clauses) == 1 else "(" + " AND ".join(clauses) + ")"
    excluded = _excluded(query)
    if excluded:
        return f"{positive} NOT {_any(excluded)}"
    return positive


def compile_exclusion(query: Query) -> str | None:
    """A MATCH expression for the rows ``query`` excludes (used when it has nothing positive)."""
    excluded = _excluded(query)
    return _any(excluded) if excluded else None


def compile_highlight_match(query: Query) -> str | None:
    """Every positive term and phrase OR-ed, stop words included: what to mark in a text."""
    parts: list[str] = []
    for text in (*query.terms, *query.phrases, *(ft.text for ft in query.field_terms)):
        p = _phrase(text)
        if p and p not in parts:
            parts.append(p)
    return _any(parts) if parts else None


def bm25_expression(weights: tuple[float, float, float] = BM25_WEIGHTS) -> str:
    """The SQL ranking expression, e.g. ``bm25(papers_fts, 2.0, 1.0, 0.5)`` (lower is better)."""
    return f"bm25({FTS_TABLE}, {', '.join(repr(float(w)) for w in weights)})"


def category_matches(pattern: str, category: str) -> bool:
    """``cat:`` semantics: equal, or a prefix ending at a ``.``/``-`` boundary (cs → cs.LG)."""
    p, c = pattern.lower(), category.lower()
    return (
        c == p or (p.endswith((".", "-")) and c.startswith(p)) or c.startswith((p + ".", p + "-"))
    )


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """What storage needs to run a query: FTS5 expressions plus resolved filter values.

    ``match`` ranks (``None``: nothing to rank on — list by date); ``exclude_match`` is set only
    when ``match`` is ``None`` and rows matching it must be left out. Filters: a row passes when,
    for each non-empty filter, it matches one of the values. ``published_after`` is the earliest
    of the ``since:`` cutoffs (they OR together), in UTC.
    """

    match: str | None
    exclude_match: str | None
    categories: tuple[str, ...]
    years: tuple[YearRange, ...]
    published_after: datetime | None
    sources: tuple[str, ...]
    ids: tuple[str, ...]


def compile_query(query: Query, now: datetime, *, require_all: bool = False) -> CompiledQuery:
    """Compile ``query`` for storage; ``now`` (aware, UTC) resolves relative ``since:`` values."""
    match = compile_match(query, require_all=require_all)
    cutoffs: list[datetime] = []
    for s in query.since:
        if isinstance(s, RelativeTime):
            cutoffs.append(s.cutoff(now))
        elif isinstance(s, date):
            cutoffs.append(datetime.combine(s, time.min, tzinfo=UTC))
    return CompiledQuery(
        match=match,
        exclude_match=None if match else compile_exclusion(query),
        categories=query.categories,
        years=query.years,
        published_after=min(cutoffs) if cutoffs else None,
        sources=query.sources,
        ids=query.ids,
    )

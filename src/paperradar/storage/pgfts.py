"""Compile a parsed :class:`~paperradar.querylang.Query` into PostgreSQL full-text search.

The keyword index is the generated column ``papers.tsv`` (migration 0002)::

    setweight(to_tsvector('english', title), 'A') || … abstract 'B' || … author_names 'C'

with a GIN index, ranked with ``ts_rank`` (title hits weigh most; term frequency rather than
``ts_rank_cd``'s cover density: SciFact train keyword nDCG@10 0.571 against 0.430, and about a
third of the CPU per ranked row). The same semantics as the
FTS5 compilation in :mod:`paperradar.storage.fts`:

* free terms are OR-ed for ranking (stop words, duplicates out, at most ``MAX_OR_TERMS``);
  a hyphenated or dotted word (``COVID-19``) is a phrase of its tokens;
* "phrases" (``<->``) and ``title:``/``abstract:`` terms are required (AND); ``title:`` and
  ``abstract:`` terms must also occur in that column;
* ``author:`` values are a case-insensitive substring filter on the author names (OR-ed);
* ``-exclusions`` are ``!!`` (NOT);
* ``require_all`` makes every free term required.

No tsquery text is ever assembled from user input: each piece is ``plainto_tsquery`` or
``phraseto_tsquery`` of a bound parameter, combined with ``tsquery_and``/``tsquery_or``/
``tsquery_not``, so no input can produce a tsquery syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import REGCONFIG, TSQUERY, TSVECTOR

from paperradar.querylang import Query
from paperradar.storage.fts import MAX_OR_TERMS, fts_tokens, ranking_words
from paperradar.storage.schema import papers

__all__ = [
    "TSV",
    "CompiledTsQuery",
    "compile_tsquery",
    "excluded_tsquery",
    "matches",
    "rank_expression",
]

CONFIG = "english"
TSV: sa.ColumnElement[str] = sa.literal_column("papers.tsv", type_=TSVECTOR)
# ts_rank normalization: 1 divides by 1 + log(document length), so long abstracts do not win
# by length alone.
RANK_NORMALIZATION = 1


def _config() -> sa.ColumnElement[str]:
    """``'english'::regconfig`` written into the SQL, not bound: with a constant configuration
    ``plainto_tsquery`` of a bound text is immutable, so the planner folds the whole tsquery and
    estimates from the column's word statistics how many rows match (with a bound configuration
    it assumed 0.5 % for every query, common words and rare alike)."""
    return sa.literal_column(f"'{CONFIG}'::regconfig", REGCONFIG)


def matches(vector: sa.ColumnElement[str], query: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """``vector @@ query`` as a boolean SQL expression."""
    return vector.op("@@", return_type=sa.Boolean)(query)


def _clean(text: str) -> str:
    return text.replace("\x00", " ")


def tsquery_of(text: str, *, phrase: bool = False) -> sa.ColumnElement[str] | None:
    """``text`` as a tsquery: its words AND-ed, or in sequence when ``phrase`` (or when it is one
    word of several tokens, such as ``COVID-19``); ``None`` when it has no word at all."""
    tokens = fts_tokens(text)
    if not tokens:
        return None
    fn = sa.func.phraseto_tsquery if phrase or len(tokens) > 1 else sa.func.plainto_tsquery
    return fn(_config(), _clean(text), type_=TSQUERY)


def _or(parts: list[sa.ColumnElement[str]]) -> sa.ColumnElement[str]:
    out = parts[0]
    for p in parts[1:]:
        out = sa.func.tsquery_or(out, p, type_=TSQUERY)
    return out


def _and(parts: list[sa.ColumnElement[str]]) -> sa.ColumnElement[str]:
    out = parts[0]
    for p in parts[1:]:
        out = sa.func.tsquery_and(out, p, type_=TSQUERY)
    return out


def _ranking_terms(query: Query) -> list[sa.ColumnElement[str]]:
    compiled = (tsquery_of(term) for term in ranking_words(query))
    return [q for q in compiled if q is not None][:MAX_OR_TERMS]


def excluded_tsquery(query: Query) -> sa.ColumnElement[str] | None:
    """The tsquery of everything ``query`` excludes, OR-ed; ``None`` when nothing is."""
    parts = [tsquery_of(t) for t in query.excluded_terms]
    parts += [tsquery_of(t, phrase=True) for t in query.excluded_phrases]
    present = [p for p in parts if p is not None]
    return _or(present) if present else None


@dataclass(slots=True)
class CompiledTsQuery:
    """``match``: the tsquery a row must satisfy (``None``: only ``conditions`` select rows);
    ``rank``: the tsquery scored with ``ts_rank``; ``conditions``: further required SQL;
    ``loose``: ``match`` with every phrase relaxed to its words in any order (``None`` when
    the query has no phrase): what the GIN index answers without reading each row's positions.
    """

    match: sa.ColumnElement[str] | None
    rank: sa.ColumnElement[str] | None
    conditions: list[sa.ColumnElement[bool]] = field(default_factory=list)
    loose: sa.ColumnElement[str] | None = None


def compile_tsquery(query: Query, *, require_all: bool = False) -> CompiledTsQuery | None:
    """What to run for ``query``; ``None`` when nothing positive is left to search for."""
    required: list[sa.ColumnElement[str]] = []
    loose: list[sa.ColumnElement[str]] = []  # required, phrases as their words AND-ed
    conditions: list[sa.ColumnElement[bool]] = []
    for text in query.phrases:
        q = tsquery_of(text, phrase=True)
        if q is not None:
            required.append(q)
            loose.append(sa.func.plainto_tsquery(_config(), _clean(text), type_=TSQUERY))
    for ft in query.field_terms:
        q = tsquery_of(ft.text, phrase=True)
        if q is None:
            continue
        required.append(q)
        loose.append(q)
        column = papers.c.title if ft.field == "title" else papers.c.abstract
        conditions.append(matches(sa.func.to_tsvector(_config(), column, type_=TSVECTOR), q))
    authors = [a for a in query.authors if a.strip()]
    if authors:
        conditions.append(
            sa.or_(
                *[
                    sa.func.lower(papers.c.author_names).contains(
                        _clean(a).lower(), autoescape=True
                    )
                    for a in authors
                ]
            )
        )
    terms = _ranking_terms(query)
    if require_all:
        required += terms
    match: sa.ColumnElement[str] | None
    # As in FTS5: when anything is required (phrases, field terms, authors), free terms only rank.
    if required:
        match = _and(required)
    elif terms and not authors:
        match = _or(terms)
    else:
        match = None
    if match is None and not conditions:
        return None
    relaxed = _and([*loose, *terms] if require_all else loose) if query.phrases else None
    excluded = excluded_tsquery(query)
    if excluded is not None:
        if match is not None:
            match = sa.func.tsquery_and(
                match, sa.func.tsquery_not(excluded, type_=TSQUERY), type_=TSQUERY
            )
            if relaxed is not None:
                relaxed = sa.func.tsquery_and(
                    relaxed, sa.func.tsquery_not(excluded, type_=TSQUERY), type_=TSQUERY
                )
        else:
            conditions.append(sa.not_(matches(TSV, excluded)))
    rank_parts = terms if require_all else [*terms, *required]
    rank = _or(rank_parts) if rank_parts else None
    return CompiledTsQuery(match, rank, conditions, relaxed)


def rank_expression(
    rank: sa.ColumnElement[str] | None, vector: sa.ColumnElement[str] = TSV
) -> sa.ColumnElement[float]:
    """``ts_rank`` of ``vector`` (default: the row's) against ``rank`` as double precision
    (0 without one)."""
    if rank is None:
        return sa.cast(sa.literal(0.0), sa.Float(precision=53))
    return sa.cast(sa.func.ts_rank(vector, rank, RANK_NORMALIZATION), sa.Float(precision=53))

"""Search: parse the query once, run keyword and/or vector retrieval, fuse, filter, page.

Modes: ``keyword`` (BM25 over title/abstract/authors), ``semantic`` (embeddings), ``hybrid``
(both, fused). Exact arXiv-id and exact-title matches are pinned first. When no vectors are
available, semantic/hybrid fall back to keyword and say so in ``notice``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from paperradar.errors import InvalidId, InvalidQuery
from paperradar.model import Paper, parse_paper_id, title_key
from paperradar.querylang import Query, parse_query
from paperradar.storage import Cursor, PaperFilter, Storage
from paperradar.storage.base import KeywordHit
from paperradar.storage.fts import STOP_WORDS, CompiledQuery, compile_query

__all__ = [
    "Hit",
    "Mode",
    "SearchResult",
    "VectorSearch",
    "filter_for",
    "search_papers",
]

Mode = Literal["keyword", "semantic", "hybrid"]
Sort = Literal["relevance", "date"]
MODES: tuple[Mode, ...] = ("keyword", "semantic", "hybrid")
FUSION_DEPTH = 100  # candidates taken from each retriever before fusion
MAX_PLAIN_TERMS = 64
CONJUNCTIVE_MAX_TERMS = 4  # queries of 2..4 words rank the papers with every word (keyword_hits)

HALF_THREADS = 8  # threads running a hybrid search's keyword half beside its vector half

# (query text, filter, k) -> [(pk, similarity)], best first; None when no vectors are available.
VectorSearch = Callable[[str, PaperFilter, int], list[tuple[int, float]]]
Fuse = Callable[[list[list[int]], list[list[float]]], list[tuple[int, float]]]


@dataclass(slots=True)
class Hit:
    paper: Paper
    score: float
    matched_by: list[str] = field(default_factory=list)  # "keyword", "semantic", "id", "title"


@dataclass(slots=True)
class SearchResult:
    query: str
    mode: Mode
    hits: list[Hit]
    parsed: Query
    next_cursor: str | None = None
    notice: str | None = None
    took_ms: float = 0.0


def filter_for(query: Query, compiled: CompiledQuery) -> PaperFilter:
    return PaperFilter(
        categories=list(compiled.categories),
        authors=list(query.authors),
        years=[(y.start, y.end) for y in compiled.years],
        since=compiled.published_after,
        sources=list(compiled.sources),
        ids=_canonical_ids(compiled.ids),
        exclude=query if compiled.match is None else None,
    )


def _canonical_ids(ids: Sequence[str]) -> list[str]:
    out = []
    for raw in ids:
        try:
            out.append(parse_paper_id(raw).key)
        except InvalidId as exc:
            raise InvalidQuery(str(exc)) from exc
    return out


def _pinned(storage: Storage, query: Query, raw: str) -> list[Paper]:
    """A query that is an arXiv id/DOI/URL, or exactly a stored title, pins that paper."""
    text = raw.strip()
    if not text:
        return []
    try:
        pid = parse_paper_id(text)
    except InvalidId:
        pid = None
    if pid is not None:
        return storage.get_papers([pid.key])
    if len(text) < 12 or not query.free_text:
        return []
    try:
        key = title_key(query.free_text)
    except InvalidId:
        return []
    return storage.get_papers([key])


def search_papers(
    storage: Storage,
    text: str,
    *,
    mode: Mode = "hybrid",
    sort: Sort = "relevance",
    limit: int = 20,
    cursor: str | None = None,
    vector_search: VectorSearch | None = None,
    fuse: Fuse | None = None,
    now: datetime | None = None,
    syntax: bool = True,
) -> SearchResult:
    """Search ``text``. With ``syntax=False`` the text is plain words (no operators): for
    benchmarks and "more like this" over free text."""
    started = time.perf_counter()
    if mode not in MODES:
        raise InvalidQuery(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    if not 1 <= limit <= 200:
        raise InvalidQuery("limit must be between 1 and 200")
    query = parse_query(text) if syntax else Query(terms=tuple(text.split()[:MAX_PLAIN_TERMS]))
    compiled = compile_query(query, now or datetime.now(UTC))
    flt = filter_for(query, compiled)
    notice = "the query was too long and was shortened" if query.truncated else None
    if mode != "keyword" and vector_search is None:
        notice = "semantic search is unavailable until embeddings are built: keyword results only"
        mode = "keyword"
    if mode != "keyword" and not query.free_text.strip():
        mode = "keyword"
    if compiled.match is None or sort == "date":
        result = _listing(storage, query, compiled, flt, limit, cursor)
    elif mode == "keyword":
        result = _keyword(storage, query, flt, limit, cursor)
    else:
        assert vector_search is not None
        result = _fused(storage, query, flt, mode, limit, cursor, vector_search, fuse)
    result.query = text
    if cursor is None and sort == "relevance":
        pins = _pinned(storage, query, text)
        if pins:
            pinned_ids = {p.id for p in pins}
            result.hits = [
                Hit(p, float("inf"), ["id" if p.arxiv_id else "title"]) for p in pins
            ] + [h for h in result.hits if h.paper.id not in pinned_ids]
    if notice and not result.notice:
        result.notice = notice
    result.took_ms = (time.perf_counter() - started) * 1000
    return result


def _listing(
    storage: Storage,
    query: Query,
    compiled: CompiledQuery,
    flt: PaperFilter,
    limit: int,
    cursor: str | None,
) -> SearchResult:
    after = Cursor.decode(cursor) if cursor else None
    if compiled.match is not None:  # date order over keyword matches: every term required
        rows = storage.keyword_listing(query, flt, limit=limit + 1, after=after)
    else:
        rows = storage.list_papers(flt, sort="published", limit=limit + 1, after=after)
    more = len(rows) > limit
    rows = rows[:limit]
    matched = ["keyword"] if compiled.match is not None else ["filter"]
    return SearchResult(
        query="",
        mode="keyword",
        hits=[Hit(p, 0.0, list(matched)) for p, _ in rows],
        parsed=query,
        next_cursor=rows[-1][1].encode() if more and rows else None,
    )


def _is_short(query: Query) -> bool:
    words = {t.casefold() for t in query.terms} - STOP_WORDS
    return 2 <= len(words) <= CONJUNCTIVE_MAX_TERMS


def keyword_hits(
    storage: Storage,
    query: Query,
    flt: PaperFilter,
    *,
    limit: int,
    after: Cursor | None = None,
) -> list[KeywordHit]:
    """BM25 hits, best first. A short query (two to four words) ranks only the papers that
    contain every word whenever there are more of them than asked for: BM25 over the OR of the
    words would score every paper with any of them (most of a large corpus for common words),
    and the papers with all the words are the ones a reader means. With fewer, the OR ranking.
    The choice depends on the query alone, so every page of a search makes the same one."""
    if _is_short(query):
        every = storage.keyword_search(query, flt, limit=limit, require_all=True)
        if len(every) >= limit:
            if after is None:
                return every
            return storage.keyword_search(query, flt, limit=limit, after=after, require_all=True)
    return storage.keyword_search(query, flt, limit=limit, after=after)


def _keyword(
    storage: Storage, query: Query, flt: PaperFilter, limit: int, cursor: str | None
) -> SearchResult:
    after = Cursor.decode(cursor) if cursor else None
    hits = keyword_hits(storage, query, flt, limit=limit + 1, after=after)
    more = len(hits) > limit
    hits = hits[:limit]
    papers = storage.papers_by_pk([h.pk for h in hits])
    out = [Hit(papers[h.pk], h.score, ["keyword"]) for h in hits if h.pk in papers]
    nxt = Cursor(hits[-1].score, hits[-1].pk).encode() if more and hits else None
    return SearchResult(query="", mode="keyword", hits=out, parsed=query, next_cursor=nxt)


def rrf(
    ranked_lists: list[list[int]], scores: list[list[float]], k: int = 60
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion (the fallback when no tuned fusion is given)."""
    total: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, pk in enumerate(ranked):
            total[pk] = total.get(pk, 0.0) + 1.0 / (k + rank + 1)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


_halves: ThreadPoolExecutor | None = None
_halves_lock = threading.Lock()


def _beside(fn: Callable[[], list[KeywordHit]]) -> Future[list[KeywordHit]]:
    """Run ``fn`` on another thread: a hybrid search's keyword half runs while its vector half
    (query embedding and nearest neighbours, both outside the GIL) runs on the caller's."""
    global _halves
    with _halves_lock:
        if _halves is None:
            _halves = ThreadPoolExecutor(HALF_THREADS, thread_name_prefix="paperradar-search")
        return _halves.submit(fn)


def _fused(
    storage: Storage,
    query: Query,
    flt: PaperFilter,
    mode: Mode,
    limit: int,
    cursor: str | None,
    vector_search: VectorSearch,
    fuse: Fuse | None,
) -> SearchResult:
    offset = 0
    if cursor:
        c = Cursor.decode(cursor)
        if c.value != "offset" or c.pk < 0:
            raise InvalidQuery("bad page cursor for a semantic/hybrid search", field="cursor")
        offset = c.pk
    depth = max(FUSION_DEPTH, offset + limit + 1)
    keyword_half = None
    if mode == "hybrid":
        keyword_half = _beside(lambda: keyword_hits(storage, query, flt, limit=depth))
    try:
        vec = vector_search(query.free_text, flt, depth)
    except BaseException:
        if keyword_half is not None and not keyword_half.cancel():
            keyword_half.exception()  # let it finish; the vector half's error is the answer
        raise
    vec_pks = [pk for pk, _ in vec]
    if keyword_half is None:
        fused = vec
        kw_pks: set[int] = set()
    else:
        kw = keyword_half.result()
        kw_pks = {h.pk for h in kw}
        fused = (fuse or rrf)(
            [[h.pk for h in kw], vec_pks], [[h.score for h in kw], [s for _, s in vec]]
        )
    page = fused[offset : offset + limit]
    papers = storage.papers_by_pk([pk for pk, _ in page])
    vec_set = set(vec_pks)
    hits = []
    for pk, score in page:
        if pk not in papers:
            continue
        why = [name for name, pks in (("keyword", kw_pks), ("semantic", vec_set)) if pk in pks]
        hits.append(Hit(papers[pk], score, why))
    more = len(fused) > offset + limit
    nxt = Cursor("offset", offset + limit).encode() if more else None
    return SearchResult(query="", mode=mode, hits=hits, parsed=query, next_cursor=nxt)

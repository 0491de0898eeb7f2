"""Keyword matches newest first (``sort=date``): every match, not only the best-ranked ones.

The index orders its matches by their date in whole seconds, over the newest papers first when
every word is common; the page is ordered exactly in SQL (published, else first seen, then pk),
so papers sharing a second with the cut of a page are never skipped nor repeated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar.engine import make_engine
from paperradar.model import Author, Paper
from paperradar.querylang import parse_query
from paperradar.storage import Cursor, PaperFilter, open_storage
from paperradar.storage.keyword_index import LISTING_WINDOW
from paperradar.storage.sqlite import SqliteStorage

START = datetime(2020, 1, 1, tzinfo=UTC)
MATCHES = 1_150  # more than the 1,000 best by BM25 that date order used to be drawn from


def paper(i: int) -> Paper:
    """Papers 0..MATCHES-1 hold both words: the older a paper, the more often (so the newest
    rank last by BM25). Every 7th has no published date (first seen: the same second for
    many); every 5th shares its published second with the next one."""
    reps = 1 + (MATCHES - i) // 100
    words = " ".join(["kernel graph"] * reps)
    published = None if i % 7 == 3 else START + timedelta(seconds=i - i % 5 % 2, microseconds=i)
    return Paper(
        id=f"2401.{i:05d}",
        title=f"Study {i}",
        abstract=f"{words} and a long tail of other words to make the text long {i}.",
        authors=[Author("Ada Lovelace" if i % 3 else "Alan Turing")],
        arxiv_id=f"2401.{i:05d}",
        categories=["cs.LG" if i % 2 else "math.OC"],
        primary_category="cs.LG",
        published=published,
        sources=["test"],
    )


def others() -> list[Paper]:
    """Papers with only one of the words, newer than every match."""
    late = START + timedelta(days=400)
    return [
        Paper(
            id=f"2402.{i:05d}",
            title=f"Graph {i}" if i % 2 else f"Kernel {i}",
            abstract="graph graph" if i % 2 else "kernel kernel",
            authors=[Author("Ada Lovelace")],
            arxiv_id=f"2402.{i:05d}",
            published=late + timedelta(seconds=i),
            sources=["test"],
        )
        for i in range(40)
    ]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStorage]:
    db = tmp_path_factory.mktemp("listing") / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([paper(i) for i in range(MATCHES)] + others())
    yield s
    s.close()


def expected(s: SqliteStorage, flt_sql: str = "1") -> list[str]:
    """Every paper with both words, newest first, by brute force."""
    with s.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, coalesce(published, first_seen) AS k, pk, abstract FROM papers "
                f"WHERE {flt_sql} ORDER BY k DESC, pk DESC"
            )
        ).all()
    return [r.id for r in rows if "kernel" in r.abstract and "graph" in r.abstract]


def listed(s: SqliteStorage, text: str, flt: PaperFilter, limit: int) -> list[str]:
    out: list[str] = []
    after: Cursor | None = None
    while True:
        page = s.keyword_listing(parse_query(text), flt, limit=limit, after=after)
        out += [p.id for p, _ in page]
        if len(page) < limit:
            return out
        after = page[-1][1]


@pytest.fixture(params=["whole", "windows"])
def window(request: pytest.FixtureRequest, storage: SqliteStorage) -> Iterator[None]:
    """Every match scanned at once, or the newest 40 papers' first, then 400's, then all's."""
    storage.keyword_index.listing_window = LISTING_WINDOW if request.param == "whole" else 40
    yield
    storage.keyword_index.listing_window = LISTING_WINDOW


@pytest.mark.parametrize("limit", [6, 64, 500])
def test_every_match_pages_out_newest_first(
    storage: SqliteStorage, window: None, limit: int
) -> None:
    assert listed(storage, "kernel graph", PaperFilter(), limit) == expected(storage)


def test_filters_and_operators_apply(storage: SqliteStorage, window: None) -> None:
    flt = PaperFilter(categories=["cs.LG"])
    assert listed(storage, "kernel graph", flt, 50) == expected(
        storage, "categories LIKE '% cs.LG %'"
    )
    turing = listed(storage, "kernel graph author:turing", PaperFilter(), 50)
    assert turing == expected(storage, "author_names LIKE '%Turing%'")
    assert listed(storage, "nothing-here kernel", PaperFilter(), 10) == []


def test_the_newest_match_comes_first_even_if_it_ranks_last(storage: SqliteStorage) -> None:
    q = parse_query("kernel graph")
    best = storage.keyword_search(q, PaperFilter(), limit=1000, require_all=True)
    newest = storage.keyword_listing(q, PaperFilter(), limit=1)[0][0].id
    assert newest == expected(storage)[0]
    assert newest not in {h.id for h in best}  # what ordering the best 1,000 by date missed


def test_engine_sort_date_pages_every_match(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    eng.storage.write_papers([paper(i) for i in range(0, MATCHES, 9)] + others())
    ids: list[str] = []
    cursor = None
    while True:
        result = eng.search("kernel graph", mode="keyword", sort="date", limit=20, cursor=cursor)
        ids += [h.paper.id for h in result.hits]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert isinstance(eng.storage, SqliteStorage)
    assert ids == expected(eng.storage)
    eng.close()


WORDS = ["kernel", "graph", "tree", "flow"]


@st.composite
def corpora(draw: st.DrawFn) -> list[tuple[str, int | None]]:
    """(abstract, published second offset or None) per paper: a few dates shared by many."""
    n = draw(st.integers(1, 45))
    texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
    dates = st.one_of(st.none(), st.integers(0, 6), st.integers(0, 10**6))
    return draw(st.lists(st.tuples(texts, dates), min_size=n, max_size=n))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=corpora(),
    text=st.sampled_from(["kernel", "kernel graph", "graph tree flow", '"kernel graph"']),
    limit=st.integers(1, 8),
    window=st.sampled_from([3, LISTING_WINDOW]),
)
def test_pages_equal_brute_force_on_random_corpora(
    tmp_path_factory: pytest.TempPathFactory,
    corpus: list[tuple[str, int | None]],
    text: str,
    limit: int,
    window: int,
) -> None:
    db = tmp_path_factory.mktemp("random") / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    try:
        s.write_papers(
            [
                Paper(
                    id=f"2403.{i:05d}",
                    title=f"Paper {i}",
                    abstract=abstract,
                    arxiv_id=f"2403.{i:05d}",
                    published=None if day is None else START + timedelta(seconds=day),
                    sources=["test"],
                )
                for i, (abstract, day) in enumerate(corpus)
            ]
        )
        s.keyword_index.listing_window = window
        every = s.keyword_search(parse_query(text), PaperFilter(), limit=1000, require_all=True)
        matching = {h.id for h in every}
        with s.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id FROM papers ORDER BY coalesce(published, first_seen) DESC, pk DESC"
                )
            ).scalars()
            want = [pid for pid in rows if pid in matching]
        assert listed(s, text, PaperFilter(), limit) == want
    finally:
        s.close()


def test_every_backend_lists_matches_newest_first(storage_url: str) -> None:
    """The contract on SQLite and PostgreSQL (which orders its best 1,000 by rank: all of
    these)."""
    s = open_storage(storage_url)
    try:
        s.write_papers([paper(i) for i in range(0, MATCHES, 23)] + others())
        q = parse_query("kernel graph")
        got = [p.id for p, _ in s.keyword_listing(q, PaperFilter(), limit=30)]
        rest = s.keyword_listing(q, PaperFilter(), limit=100, after=None)
        every = s.list_papers(PaperFilter(), sort="published", limit=1000)
        want = [p.id for p, _ in every if {"kernel", "graph"} <= set(p.abstract.split())]
        assert got == want[:30]
        assert [p.id for p, _ in rest] == want
    finally:
        s.close()

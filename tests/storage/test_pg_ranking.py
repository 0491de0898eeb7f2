"""PostgreSQL keyword ranking in a large corpus: only the newest matches are ranked.

Ranking scores every ranked row, and an OR of common words matches most of a large corpus, so
beyond ``EXACT_RANK_MAX`` papers ``PostgresStorage`` ranks the newest ``RANK_CANDIDATES``
matches (by pk, arrival order). The limits are lowered here so that a few dozen papers are
"large"; the ranking SQL is the one that runs at a million papers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paperradar.model import Author, Paper
from paperradar.querylang import parse_query
from paperradar.storage import Cursor, PaperFilter, open_storage
from paperradar.storage import postgres as pg

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("storage_url", ["postgres"], indirect=True),
]


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg, "EXACT_RANK_MAX", 10)
    monkeypatch.setattr(pg, "RANK_CANDIDATES", 6)


def _paper(i: int, title: str, abstract: str) -> Paper:
    return Paper(id=f"2405.{i:05d}", title=title, abstract=abstract, authors=[Author("Ada")])


@pytest.fixture
def corpus(storage_url: str) -> Iterator[pg.PostgresStorage]:
    st = open_storage(storage_url)
    assert isinstance(st, pg.PostgresStorage)
    # pk 1..30: the best match (title) comes first, then 29 abstract-only matches; a paper
    # without the word in between
    papers = [_paper(0, "Sparse coding", "sparse sparse sparse")]
    papers += [_paper(i, f"Paper {i}", f"on sparse methods {i}") for i in range(1, 30)]
    st.write_papers(papers)
    st.write_papers([_paper(99, "Dense only", "nothing here")])
    yield st
    st.close()


def test_small_corpus_ranks_every_match(corpus: pg.PostgresStorage) -> None:
    hits = corpus.keyword_search(parse_query("sparse"), PaperFilter(), limit=3)
    assert hits[0].id == "2405.00000"  # the oldest paper, but the best match


@pytest.mark.usefixtures("small_limits")
def test_large_corpus_ranks_the_newest_matches(corpus: pg.PostgresStorage) -> None:
    query = parse_query("sparse")
    hits = corpus.keyword_search(query, PaperFilter(), limit=4)
    hits += corpus.keyword_search(
        query, PaperFilter(), limit=4, after=Cursor(hits[-1].score, hits[-1].pk)
    )
    # pages of 4 rank the 6 newest matches (pks 25..30), best first, each once; the old best
    # match is not among them
    assert sorted(h.pk for h in hits) == list(range(25, 31))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # a page never holds fewer candidates than it shows
    assert len(corpus.keyword_search(query, PaperFilter(), limit=20)) == 20


@pytest.mark.usefixtures("small_limits")
def test_rare_query_in_a_large_corpus_still_finds_old_papers(corpus: pg.PostgresStorage) -> None:
    hits = corpus.keyword_search(parse_query("coding"), PaperFilter(), limit=10)
    assert [h.id for h in hits] == ["2405.00000"]

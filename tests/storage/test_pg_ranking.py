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
    monkeypatch.setattr(pg, "WINDOW_BLOCKS", (3, 3))  # pk windows 31..29, 28..26, 1..25
    monkeypatch.setattr(pg, "PK_BLOCK", 1)


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


@pytest.mark.usefixtures("small_limits")
def test_windows_collect_the_newest_matches_across_their_edges(
    corpus: pg.PostgresStorage,
) -> None:
    # "methods" is in pks 2..30: the first window (29..31) holds two matches, the second
    # (26..28) three, the rest the sixth
    hits = corpus.keyword_search(parse_query("methods"), PaperFilter(), limit=6)
    assert sorted(h.pk for h in hits) == list(range(25, 31))
    # a filter that only old papers pass: found in the last window
    old = PaperFilter(ids=["2405.00003", "2405.00004"])
    assert {h.id for h in corpus.keyword_search(parse_query("sparse"), old)} == {
        "2405.00003",
        "2405.00004",
    }


def test_vectors_indexed_as_halfvec_and_an_older_float_index_still_serves(
    storage_url: str,
) -> None:
    import numpy as np
    import sqlalchemy as sa

    st = open_storage(storage_url)
    assert isinstance(st, pg.PostgresStorage)
    try:
        st.write_papers([_paper(i, f"Paper {i}", "text") for i in range(3)])
        pks = sorted(st.pks_for_ids([f"2405.{i:05d}" for i in range(3)]).values())
        vecs = np.eye(3, 8, dtype="<f4")
        st.write_embeddings("m", [(pk, "h", v.tobytes()) for pk, v in zip(pks, vecs, strict=True)])
        with st.engine.connect() as conn:
            defs = conn.execute(
                sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'ix_embeddings_hnsw%'"
                )
            ).scalars()
            assert ["halfvec(8)) halfvec_cosine_ops" in d for d in defs] == [True]
        query = (vecs[1] + 0.1 * vecs[2]).tobytes()
        near = st.nearest_embeddings("m", query, 2)
        assert [pk for pk, _ in near] == [pks[1], pks[2]]
        assert near[0][1] == pytest.approx(1 / np.sqrt(1.01), abs=1e-6)  # exact, not half
        # a database made before this version has a float32 index: it is used, none is added
        with st.engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX " + st._index_name("m", 8, "halfvec")))
            conn.execute(
                sa.text(
                    f"CREATE INDEX {st._index_name('m', 8, 'vector')} ON embeddings USING hnsw "
                    "((embedding::vector(8)) vector_cosine_ops) WHERE model = 'm'"
                )
            )
    finally:
        st.close()
    again = open_storage(storage_url)
    assert isinstance(again, pg.PostgresStorage)
    try:
        assert [pk for pk, _ in again.nearest_embeddings("m", query, 2)] == [pks[1], pks[2]]
        again.write_embeddings("m", [(pks[0], "h2", vecs[0].tobytes())])
        with again.engine.connect() as conn:
            names = conn.execute(
                sa.text(
                    "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_embeddings_hnsw%'"
                )
            ).scalars()
            assert [n[-1] for n in names] == ["8"]  # the float32 one, no second index
    finally:
        again.close()


@pytest.mark.usefixtures("small_limits")
def test_a_phrase_is_checked_in_the_newest_papers_with_its_words(
    corpus: pg.PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "PHRASE_CANDIDATES", 4)
    hits = corpus.keyword_search(parse_query('"sparse methods"'), PaperFilter(), limit=3)
    assert len(hits) == 3 and {h.pk for h in hits} <= {27, 28, 29, 30}
    # every paper has both words, none in this order
    assert corpus.keyword_search(parse_query('"methods sparse"'), PaperFilter()) == []
    # required with the rest of the query, exclusions too
    assert corpus.keyword_search(parse_query('"methods sparse" coding'), PaperFilter()) == []
    assert corpus.keyword_search(parse_query('"sparse methods" -methods'), PaperFilter()) == []


@pytest.mark.usefixtures("small_limits")
@pytest.mark.parametrize("widths", [(1,), (1, 1, 2, 4), (2, 4, 8, 16), (100,)])
def test_any_windows_find_the_same_papers(
    corpus: pg.PostgresStorage, monkeypatch: pytest.MonkeyPatch, widths: tuple[int, ...]
) -> None:
    monkeypatch.setattr(pg, "WINDOW_BLOCKS", widths)
    sparse = corpus.keyword_search(parse_query("sparse"), PaperFilter(), limit=4)
    sparse += corpus.keyword_search(
        parse_query("sparse"), PaperFilter(), limit=4, after=Cursor(sparse[-1].score, sparse[-1].pk)
    )
    assert sorted(h.pk for h in sparse) == list(range(25, 31))
    methods = corpus.keyword_search(parse_query("methods"), PaperFilter(), limit=6)
    assert sorted(h.pk for h in methods) == list(range(25, 31))
    coding = corpus.keyword_search(parse_query("coding"), PaperFilter(), limit=10)
    assert [h.id for h in coding] == ["2405.00000"]
    old = PaperFilter(ids=["2405.00003", "2405.00004"])
    assert {h.id for h in corpus.keyword_search(parse_query("sparse"), old)} == {
        "2405.00003",
        "2405.00004",
    }


# -- filters and phrases in the windows: the same hits as ranking every match ---------------------

AUTHORS = ["Wei Zhang", "Ada Lovelace", "Zhangwei Li", "Grace Hopper"]
CATEGORIES = [["cs.LG", "stat.ML"], ["cs.CV"], ["math.OC", "cs.LG"], ["csx.AB"], ["cs"], []]
WORDS = ["sparse coding", "neural network", "network neural", "graph learning", "sparse network"]


@pytest.fixture
def mixed(storage_url: str) -> Iterator[pg.PostgresStorage]:
    st = open_storage(storage_url)
    assert isinstance(st, pg.PostgresStorage)
    st.write_papers(
        [
            Paper(
                id=f"2406.{i:05d}",
                title=f"{WORDS[i % 5]} {i}",
                abstract=f"we study {WORDS[(i * 3) % 5]} and {WORDS[(i * 7 + 1) % 5]}",
                authors=[Author(AUTHORS[i % 4]), Author(AUTHORS[(i + 1) % 3])],
                categories=CATEGORIES[i % 6],
            )
            for i in range(60)
        ]
    )
    yield st
    st.close()


FILTERED_QUERIES = [
    ("network", PaperFilter(categories=["cs.LG"])),
    ("network", PaperFilter(categories=["cs"])),  # archive: cs.*, cs; not csx.AB
    ("sparse", PaperFilter(categories=["cs.CV", "stat"])),
    ("author:zhang learning", PaperFilter()),
    ("author:lovelace network", PaperFilter(categories=["cs"])),
    ("graph", PaperFilter(authors=["hopper"])),
    ('"neural network"', PaperFilter()),
    ('"neural network" sparse', PaperFilter(categories=["cs.LG"])),
    ('"network neural" -graph', PaperFilter()),
    ("title:sparse network", PaperFilter(categories=["cs"])),
    ("sparse -coding", PaperFilter(categories=["math"])),
    ("network", PaperFilter(categories=["cs.LG stat.ML"])),  # blanks: each row is checked
]


@pytest.mark.parametrize(("text", "flt"), FILTERED_QUERIES)
@pytest.mark.parametrize("widths", [(1, 1, 2), (3, 3)])
def test_windowed_filters_and_phrases_give_the_hits_of_plain_ranking(
    mixed: pg.PostgresStorage,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    flt: PaperFilter,
    widths: tuple[int, ...],
) -> None:
    query = parse_query(text)
    plain = mixed.keyword_search(query, flt, limit=100)  # 60 papers: every match ranked
    # windowed: every match still fits in the candidates, so the same hits in the same order
    monkeypatch.setattr(pg, "EXACT_RANK_MAX", 10)
    monkeypatch.setattr(pg, "PK_BLOCK", 4)
    monkeypatch.setattr(pg, "WINDOW_BLOCKS", widths)
    windowed = mixed.keyword_search(query, flt, limit=100)
    assert windowed == plain
    # and the filter is the one listing applies
    if flt.categories or flt.authors:
        listed = {p.id for p, _ in mixed.list_papers(flt, limit=100)}
        assert {h.id for h in windowed} <= listed
    # the newest few only: the newest matches of the plain hits
    monkeypatch.setattr(pg, "RANK_CANDIDATES", 3)
    monkeypatch.setattr(pg, "PHRASE_CANDIDATES", 3)
    newest = mixed.keyword_search(query, flt, limit=2)
    if '"' not in text:  # a phrase checks the newest papers with its words, not its matches
        assert {h.pk for h in newest} <= set(sorted(h.pk for h in plain)[-3:])
    assert {h.pk for h in newest} <= {h.pk for h in plain}


def test_category_author_and_words_are_keys_of_the_search_index(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    st = open_storage(storage_url)
    assert isinstance(st, pg.PostgresStorage)
    try:
        st.write_papers([_paper(i, f"Paper {i}", "sparse") for i in range(3)])
        monkeypatch.setattr(pg, "EXACT_RANK_MAX", 0)
        seen: list[tuple[str, object]] = []

        def capture(conn: object, cursor: object, statement: str, params: object, *a: object):
            seen.append((statement, params))

        sa.event.listen(st.engine, "before_cursor_execute", capture)
        flt = PaperFilter(categories=["cs", "stat.ML"], authors=["ada"])
        st.keyword_search(parse_query("sparse"), flt)
        sa.event.remove(st.engine, "before_cursor_execute", capture)
        statement, params = next((s, p) for s, p in seen if "UNION ALL" in s or "ANY(ARRAY" in s)
        with st.engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql("EXPLAIN " + statement, params).scalars().all()
            # the windows' blocks are the index's first key
            indexdef = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_papers_search'"
            ).scalar_one()
    finally:
        st.close()
    conds = [line for line in plan if "Index Cond" in line and "tsv @@" in line]
    assert any("ix_papers_search" in line for line in plan), plan
    for key in ("&&", "author_names"):  # in the index scan, not a check of each row
        assert key in conds[0], plan
    assert f"gin (((pk / {pg.PK_BLOCK})), tsv, " in indexdef

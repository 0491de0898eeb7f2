"""The storage contract: every backend (SQLite, PostgreSQL) behaves the same through ``Storage``."""

from __future__ import annotations

import dataclasses
import struct
from datetime import UTC, datetime, timedelta

import pytest

from paperradar.errors import FeatureUnavailable, StorageError
from paperradar.model import Author, Paper, Version, title_key
from paperradar.querylang import parse_query
from paperradar.storage import Cursor, PaperFilter, SourceState, Storage
from paperradar.storage.base import SortKey


def dt(y: int, m: int = 1, d: int = 1, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


def paper(
    pid: str,
    title: str,
    abstract: str = "",
    *,
    authors: tuple[str, ...] = ("Ada Lovelace",),
    cats: tuple[str, ...] = ("cs.LG",),
    published: datetime | None = None,
    upvotes: int | None = None,
    sources: tuple[str, ...] = ("arxiv_api",),
    doi: str | None = None,
    first_seen: datetime | None = None,
) -> Paper:
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=[Author(a) for a in authors],
        arxiv_id=pid if pid[0].isdigit() else None,
        doi=doi,
        categories=list(cats),
        primary_category=cats[0] if cats else None,
        published=published,
        upvotes=upvotes,
        sources=list(sources),
        first_seen=first_seen,
    )


CORPUS = [
    paper(
        "2301.00001",
        "Attention is all you need",
        "We propose the Transformer, a model based solely on attention mechanisms.",
        authors=("Ashish Vaswani", "Noam Shazeer"),
        cats=("cs.CL", "cs.LG"),
        published=dt(2017, 6, 12),
        upvotes=50,
    ),
    paper(
        "2301.00002",
        "Deep residual learning for image recognition",
        "Residual networks ease the training of very deep networks.",
        authors=("Kaiming He",),
        cats=("cs.CV",),
        published=dt(2015, 12, 10),
        upvotes=40,
    ),
    paper(
        "2301.00003",
        "Masked autoencoders are scalable vision learners",
        "Masked autoencoders (MAE) reconstruct masked patches; attention helps vision.",
        authors=("Kaiming He", "Xinlei Chen"),
        cats=("cs.CV",),
        published=dt(2021, 11, 11),
        upvotes=40,
        sources=("arxiv_api", "hf_daily"),
    ),
    paper(
        "2301.00004",
        "Efficacy of mRNA vaccines against COVID-19 variants",
        "A study of vaccine efficacy; autoencoders are not used. Masked data were excluded.",
        authors=("Jane Smith",),
        cats=("q-bio.QM",),
        published=dt(2022, 3, 1),
        sources=("openalex",),
        doi="10.1000/covid.1",
    ),
    paper(
        "2301.00005",
        "Graph neural networks: a review",
        "Graph networks with attention and message passing.",
        authors=("Yann LeCun",),
        cats=("cs.LG", "stat.ML"),
        published=dt(2021, 11, 11),
        upvotes=None,
    ),
    paper(
        "2301.00006",
        "Diffusion models beat GANs on image synthesis",
        "Diffusion probabilistic models synthesize images; attention upsampling.",
        authors=("Prafulla Dhariwal", "Alex Nichol"),
        cats=("cs.LG", "cs.CV"),
        published=None,
        upvotes=40,
        first_seen=dt(2023, 5, 5),
    ),
    paper(
        "10.1000/quoted",
        'Quoted "title" OR NOT & | ! <-> :* (x)',
        "Text with AND, NEAR(x), {braces} * ^ : and a backslash \\ plus 'single' quotes.",
        authors=("Seán O'Brien",),
        cats=("math.CO",),
        published=dt(2020, 1, 1),
        doi="10.1000/quoted",
        sources=("zotero",),
    ),
]


@pytest.fixture
def loaded(storage: Storage) -> Storage:
    storage.write_papers(CORPUS)
    return storage


def ids(papers: list[Paper]) -> list[str]:
    return [p.id for p in papers]


# -- papers: write, read, related -----------------------------------------------------------------


def test_written_paper_reads_back_field_for_field(storage: Storage) -> None:
    p = Paper(
        id="2403.01234",
        title="Réseaux de neurones: ünïcode title",
        abstract="An abstract.",
        authors=[Author("A. Author", ["MIT", "ETH"]), Author("B. Author")],
        arxiv_id="2403.01234",
        version=3,
        doi="10.1/x",
        categories=["cs.LG", "stat.ML"],
        primary_category="cs.LG",
        published=dt(2024, 3, 2, 17),
        updated=dt(2024, 4, 1),
        links={"pdf": "https://arxiv.org/pdf/2403.01234", "code": "https://github.com/x/y"},
        upvotes=7,
        comments=2,
        stars=100,
        citations=5,
        sources=["arxiv_api", "hf_daily"],
        versions=[Version(1, dt(2024, 3, 2), "1MB"), Version(3, dt(2024, 4, 1), None)],
        extra={"journal_ref": "NeurIPS", "ai_keywords": ["a", "b"]},
        first_seen=dt(2024, 3, 3),
    )
    storage.write_papers([p])
    got = storage.get_paper("2403.01234")
    assert got == p
    assert storage.get_paper("missing") is None
    assert storage.get_papers(["missing", "2403.01234"]) == [p]


def test_a_big_batch_of_new_papers_reads_back_field_for_field(storage: Storage) -> None:
    """600 new papers in one write: PostgreSQL writes such a batch with COPY, so the text
    escaping (tabs, newlines, backslashes, ``\\N``, quotes), NULLs and JSON fields must survive."""
    batch = [
        Paper(
            id=f"2404.{i:05d}",
            title=f"Batch paper {i}\twith a tab, a \\N, a backslash \\ and 'quotes'",
            abstract=f'Line one of {i}.\nLine two: ünïcode, "double" quotes, \r end.'
            if i % 2
            else "",
            authors=[Author(f"Author {i}", ["Lab\tA"] if i % 3 == 0 else []), Author("Ada")],
            arxiv_id=f"2404.{i:05d}",
            version=1 + i % 3 if i % 4 else None,
            doi=f"10.1/{i}" if i % 5 == 0 else None,
            categories=["cs.LG", "stat.ML"] if i % 2 else ["math.CO"],
            primary_category="cs.LG" if i % 2 else None,
            published=dt(2024, 4, 1 + i % 28) if i % 7 else None,
            upvotes=i if i % 6 else None,
            links={"pdf": f"https://arxiv.org/pdf/2404.{i:05d}"},
            sources=["snapshot"],
            extra={"n": i, "text": "a\\b\tc"},
            first_seen=dt(2024, 5, 1),
        )
        for i in range(600)
    ]
    storage.write_papers(batch)
    assert storage.get_papers([p.id for p in batch]) == batch
    assert storage.count_papers() == 600
    storage.write_papers(batch[:3])  # written again: nothing new, nothing changed
    assert storage.count_papers() == 600
    assert storage.get_papers([p.id for p in batch[:3]]) == batch[:3]
    hits = storage.keyword_search(parse_query("backslash quotes"), PaperFilter(), limit=5)
    assert len(hits) == 5


def test_find_related_matches_by_id_doi_and_title_key(loaded: Storage) -> None:
    by_id = paper("2301.00001", "Something else entirely")
    by_doi = paper("x1", "Unrelated", doi="10.1000/covid.1")
    by_title = paper("x2", "DEEP residual  learning for image recognition!")
    nothing = paper("x3", "No such paper", doi="10.9/none")
    found = {p.id for p in loaded.find_related([by_id, by_doi, by_title, nothing])}
    assert found == {"2301.00001", "2301.00004", "2301.00002"}
    assert loaded.find_related([nothing]) == []


def test_upsert_replaces_fields_and_versions_but_keeps_first_seen(storage: Storage) -> None:
    first = dataclasses.replace(
        CORPUS[0], versions=[Version(1, dt(2017, 6, 12))], first_seen=dt(2017, 6, 13)
    )
    storage.write_papers([first])
    pk = storage.pks_for_ids([first.id])[first.id]
    second = dataclasses.replace(
        first,
        title="Attention is all you need (v2)",
        upvotes=99,
        versions=[Version(1, dt(2017, 6, 12)), Version(2, dt(2017, 12, 6))],
        first_seen=dt(2020, 1, 1),
    )
    storage.write_papers([second])
    got = storage.get_paper(first.id)
    assert got is not None
    assert got.title == "Attention is all you need (v2)"
    assert got.upvotes == 99
    assert [v.version for v in got.versions] == [1, 2]
    assert got.first_seen == dt(2017, 6, 13)
    assert storage.pks_for_ids([first.id]) == {first.id: pk}
    assert storage.count_papers() == 1
    assert [h.id for h in storage.keyword_search(parse_query("v2"), PaperFilter())] == [first.id]


def test_delete_removes_paper_versions_vectors_and_index_entries(loaded: Storage) -> None:
    target = dataclasses.replace(CORPUS[1], versions=[Version(1, dt(2015, 12, 10))])
    loaded.write_papers([target])
    pk = loaded.pks_for_ids([target.id])[target.id]
    loaded.write_embeddings("m", [(pk, "h", struct.pack("<2f", 1.0, 0.0))])
    loaded.write_papers([], deletes=[target.id, "not-there"])
    assert loaded.get_paper(target.id) is None
    assert loaded.count_papers() == len(CORPUS) - 1
    assert loaded.count_embeddings("m") == 0
    assert loaded.keyword_search(parse_query("residual"), PaperFilter()) == []
    assert loaded.papers_by_pk([pk]) == {}


def test_papers_by_pk_pks_for_ids_ids_for_pks_and_papers_after_agree(loaded: Storage) -> None:
    pks = loaded.pks_for_ids([p.id for p in CORPUS])
    assert set(pks) == {p.id for p in CORPUS}
    assert loaded.ids_for_pks(list(pks.values())) == {v: k for k, v in pks.items()}
    by_pk = loaded.papers_by_pk(list(pks.values()))
    assert {p.id for p in by_pk.values()} == set(pks)
    seen: list[int] = []
    last = 0
    while batch := loaded.papers_after(last, 3):
        assert len(batch) <= 3
        seen += [pk for pk, _ in batch]
        assert all(by_pk[pk].id == p.id for pk, p in batch)
        last = batch[-1][0]
    assert seen == sorted(pks.values())
    assert sorted(ids(list(loaded.iter_papers(batch_size=2)))) == sorted(pks)


# -- listing: filters and keyset pagination -------------------------------------------------------

FILTER_CASES: list[tuple[PaperFilter, set[str]]] = [
    (PaperFilter(), {p.id for p in CORPUS}),
    (PaperFilter(categories=["cs.CV"]), {"2301.00002", "2301.00003", "2301.00006"}),
    (PaperFilter(categories=["cs"]), {f"2301.0000{i}" for i in (1, 2, 3, 5, 6)}),
    (PaperFilter(categories=["stat.ML", "math"]), {"2301.00005", "10.1000/quoted"}),
    (PaperFilter(categories=["q-bio"]), {"2301.00004"}),
    (PaperFilter(categories=["q", "c", "cs.C"]), set()),  # on a category boundary only
    (PaperFilter(authors=["kaiming"]), {"2301.00002", "2301.00003"}),
    (PaperFilter(authors=["LECUN", "o'brien"]), {"2301.00005", "10.1000/quoted"}),
    (PaperFilter(authors=["%"]), set()),
    (PaperFilter(years=[(2021, 2021)]), {"2301.00003", "2301.00005"}),
    (PaperFilter(years=[(None, 2016)]), {"2301.00002"}),
    (PaperFilter(years=[(2022, None), (2017, 2017)]), {"2301.00004", "2301.00001"}),
    (PaperFilter(since=dt(2022, 1, 1)), {"2301.00004", "2301.00006"}),
    (
        PaperFilter(published_from=dt(2020, 1, 1), published_to=dt(2021, 11, 11)),
        {"10.1000/quoted"},
    ),
    (PaperFilter(sources=["hf_daily", "zotero"]), {"2301.00003", "10.1000/quoted"}),
    (PaperFilter(sources=["arxiv"]), set()),
    (PaperFilter(ids=["2301.00001", "nope"]), {"2301.00001"}),
    (
        PaperFilter(exclude=parse_query("-attention")),
        {"2301.00002", "2301.00004", "10.1000/quoted"},
    ),
    (
        PaperFilter(categories=["cs"], authors=["he"], years=[(2021, None)]),
        {"2301.00003"},
    ),
]


@pytest.mark.parametrize(("flt", "expected"), FILTER_CASES)
def test_every_filter_field_selects_the_same_papers(
    loaded: Storage, flt: PaperFilter, expected: set[str]
) -> None:
    rows = loaded.list_papers(flt, limit=100)
    assert {p.id for p, _ in rows} == expected
    assert loaded.count_papers(flt) == len(expected)
    pks = loaded.pks_for_ids([p.id for p in CORPUS])
    assert loaded.filter_pks(flt, list(pks.values())) == {pks[i] for i in expected}


def _sort_key(p: Paper, sort: SortKey) -> object:
    if sort == "upvotes":
        return p.upvotes or 0
    if sort == "first_seen":
        return p.first_seen
    return p.published or p.first_seen


@pytest.mark.parametrize("sort", ["published", "first_seen", "upvotes"])
@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_keyset_pages_cover_everything_once_in_order(
    storage: Storage, sort: SortKey, page_size: int
) -> None:
    # Many ties (same date, same upvotes, None upvotes) to exercise the pk tie-breaker.
    batch = [
        paper(
            f"2302.{i:05d}",
            f"Paper {i}",
            published=dt(2023, 1, 1 + i % 3) if i % 4 else None,
            upvotes=(i % 3) * 10 if i % 5 else None,
            first_seen=dt(2024, 1, 1 + i % 2),
        )
        for i in range(17)
    ]
    storage.write_papers(batch)
    full = storage.list_papers(PaperFilter(), sort=sort, limit=100)
    assert len(full) == 17
    keys = [_sort_key(p, sort) for p, _ in full]
    assert keys == sorted(keys, reverse=True)  # type: ignore[type-var]
    seen: list[str] = []
    after: Cursor | None = None
    while True:
        page = storage.list_papers(PaperFilter(), sort=sort, limit=page_size, after=after)
        if not page:
            break
        seen += [p.id for p, _ in page]
        after = Cursor.decode(page[-1][1].encode())  # through its wire form, as the API does
    assert seen == [p.id for p, _ in full]


# -- keyword search -------------------------------------------------------------------------------


def search(st: Storage, text: str, flt: PaperFilter | None = None, **kw: object) -> list[str]:
    return [h.id for h in st.keyword_search(parse_query(text), flt or PaperFilter(), **kw)]  # type: ignore[arg-type]


def test_or_ranking_puts_papers_matching_more_terms_first(loaded: Storage) -> None:
    hits = search(loaded, "masked autoencoders attention vision")
    assert hits[0] == "2301.00003"  # all four terms
    assert set(hits) >= {"2301.00001", "2301.00004", "2301.00005", "2301.00006"}
    assert "2301.00002" not in hits
    scores = [h.score for h in loaded.keyword_search(parse_query("attention"), PaperFilter())]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_title_matches_outrank_abstract_matches(loaded: Storage) -> None:
    hits = search(loaded, "attention")
    assert hits[0] == "2301.00001"


def test_require_all_keeps_only_papers_with_every_term(loaded: Storage) -> None:
    assert set(search(loaded, "masked attention")) >= {"2301.00001", "2301.00003"}
    assert search(loaded, "masked attention", require_all=True) == ["2301.00003"]


def test_stemming_and_stop_words(loaded: Storage) -> None:
    assert "2301.00004" in search(loaded, "vaccine")  # vaccines
    assert search(loaded, "the of and") == []
    assert search(loaded, "") == []


def test_phrases_require_adjacent_words(loaded: Storage) -> None:
    assert set(search(loaded, '"masked autoencoders"')) == {"2301.00003"}
    assert search(loaded, '"autoencoders masked"') == []
    assert search(loaded, "COVID-19") == ["2301.00004"]


def test_exclusions_remove_papers(loaded: Storage) -> None:
    assert "2301.00003" not in search(loaded, "attention -masked")
    assert "2301.00001" in search(loaded, "attention -masked")
    assert "2301.00003" not in search(loaded, 'attention -"masked autoencoders"')


def test_field_terms_and_author_filters(loaded: Storage) -> None:
    assert search(loaded, "title:attention") == ["2301.00001"]
    assert set(search(loaded, "abstract:attention")) == {
        "2301.00001",
        "2301.00003",
        "2301.00005",
        "2301.00006",
    }
    # free terms rank within what the required author filter selects
    assert search(loaded, "networks author:he") == ["2301.00002", "2301.00003"]
    assert set(search(loaded, "author:lecun author:vaswani")) == {"2301.00001", "2301.00005"}


def test_filters_apply_to_keyword_search(loaded: Storage) -> None:
    flt = PaperFilter(categories=["cs.CV"])
    assert set(search(loaded, "attention", flt)) == {"2301.00003", "2301.00006"}
    flt = PaperFilter(years=[(2021, 2021)], sources=["hf_daily"])
    assert search(loaded, "attention", flt) == ["2301.00003"]


@pytest.mark.parametrize(
    "text",
    ['Quoted "title"', "OR NOT", "& | ! <-> :*", "NEAR(x)", "{braces}", "backslash \\", "'single'"],
)
def test_operator_characters_are_plain_text(loaded: Storage, text: str) -> None:
    hits = search(loaded, text)
    assert all(h == "10.1000/quoted" for h in hits)


def test_keyword_cursor_pages_match_one_long_page(storage: Storage) -> None:
    storage.write_papers(
        [
            paper(
                f"2303.{i:05d}",
                "sparse attention " * (1 + i % 3),
                "attention heads " * (i % 4) + f"filler {i}",
            )
            for i in range(25)
        ]
    )
    full = storage.keyword_search(parse_query("sparse attention heads"), PaperFilter(), limit=100)
    assert len(full) == 25
    seen = []
    after: Cursor | None = None
    while True:
        page = storage.keyword_search(
            parse_query("sparse attention heads"), PaperFilter(), limit=4, after=after
        )
        if not page:
            break
        seen += page
        after = Cursor.decode(Cursor(page[-1].score, page[-1].pk).encode())
    assert [h.pk for h in seen] == [h.pk for h in full]


# -- sources --------------------------------------------------------------------------------------


def test_checkpoint_and_counts_commit_with_the_papers(storage: Storage) -> None:
    storage.write_papers(
        CORPUS[:2], source="arxiv_oai:cs", checkpoint={"until": "a"}, counts=(2, 2, 0, 0)
    )
    storage.write_papers(
        CORPUS[2:3], source="arxiv_oai:cs", checkpoint={"until": "b"}, counts=(3, 1, 1, 1)
    )
    st = storage.source_state("arxiv_oai:cs")
    assert st is not None
    assert st.checkpoint == {"until": "b"}
    assert (st.seen, st.new, st.updated, st.rejected) == (5, 3, 1, 1)
    assert st.last_run is not None and st.last_run.tzinfo is not None
    # A failing write (duplicate version rows) leaves neither papers nor checkpoint behind.
    broken = dataclasses.replace(CORPUS[3], versions=[Version(1), Version(1)])
    with pytest.raises(StorageError):
        storage.write_papers([broken], source="arxiv_oai:cs", checkpoint={"until": "c"})
    assert storage.get_paper(CORPUS[3].id) is None
    st = storage.source_state("arxiv_oai:cs")
    assert st is not None and st.checkpoint == {"until": "b"}
    assert storage.source_state("nope") is None


def test_source_errors_and_restored_states(storage: Storage) -> None:
    storage.record_source_error("rss", "HTTP 503 from rss.arxiv.org")
    storage.record_source_error("hf", None)
    states = storage.source_states()
    assert [s.source for s in states] == ["hf", "rss"]
    assert states[1].last_error == "HTTP 503 from rss.arxiv.org"
    restored = SourceState("rss", {"day": "2024-01-02"}, dt(2024, 1, 2), None, 10, 5, 4, 1)
    storage.restore_source_states([restored, SourceState("oai", {"t": 1})])
    assert storage.source_state("rss") == restored
    assert [s.source for s in storage.source_states()] == ["hf", "oai", "rss"]


# -- embeddings -----------------------------------------------------------------------------------


def vec(*xs: float) -> bytes:
    return struct.pack(f"<{len(xs)}f", *xs)


def test_embedding_backlog_write_iterate_and_staleness(loaded: Storage) -> None:
    backlog = loaded.embedding_backlog("m1", 100)
    assert len(backlog) == len(CORPUS)
    assert [pk for pk, _, _ in backlog] == sorted(pk for pk, _, _ in backlog)
    first_pk, first_hash, text = backlog[0]
    assert text.startswith("Attention is all you need. We propose")
    loaded.write_embeddings("m1", [(pk, h, vec(float(pk), 1.0, 0.0)) for pk, h, _ in backlog[:5]])
    assert loaded.count_embeddings("m1") == 5
    assert loaded.count_embeddings("m2") == 0
    assert len(loaded.embedding_backlog("m1", 100)) == len(CORPUS) - 5
    assert len(loaded.embedding_backlog("m2", 3)) == 3
    # rewriting replaces, never duplicates
    loaded.write_embeddings("m1", [(first_pk, first_hash, vec(9.0, 9.0, 9.0))])
    batches = list(loaded.iter_embeddings("m1", batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    flat = dict(row for b in batches for row in b)
    assert flat[first_pk] == vec(9.0, 9.0, 9.0)
    assert loaded.embedding_models() == ["m1"]
    # changing the text makes the stored vector stale
    changed = dataclasses.replace(CORPUS[0], abstract="A new abstract.")
    loaded.write_papers([changed])
    stale = {pk for pk, _, _ in loaded.embedding_backlog("m1", 100)}
    assert first_pk in stale


def test_embedding_backlog_by_pk_range_and_its_blocks(loaded: Storage) -> None:
    pks = sorted(pk for pk, _, _ in loaded.embedding_backlog("m1", 100))
    block = 2
    assert loaded.embedding_backlog_blocks("m1", block) == sorted({pk // block for pk in pks})
    start = pks[1] // block * block
    part = loaded.embedding_backlog("m1", 100, pk_from=start, pk_to=start + block)
    assert [pk for pk, _, _ in part] == [pk for pk in pks if start <= pk < start + block]
    loaded.write_embeddings("m1", [(pk, h, vec(1.0, 0.0, 0.0)) for pk, h, _ in part])
    assert loaded.embedding_backlog("m1", 100, pk_from=start, pk_to=start + block) == []
    assert start // block not in loaded.embedding_backlog_blocks("m1", block)
    assert loaded.embedding_backlog_blocks("m2", block) == sorted({pk // block for pk in pks})


def test_nearest_embeddings_by_cosine_with_filters(loaded: Storage) -> None:
    pks = loaded.pks_for_ids([p.id for p in CORPUS])
    directions = {
        "2301.00001": vec(1.0, 0.0, 0.0),
        "2301.00002": vec(0.9, 0.1, 0.0),
        "2301.00003": vec(0.0, 1.0, 0.0),
        "2301.00004": vec(0.0, 0.0, 1.0),
        "2301.00005": vec(0.7, 0.7, 0.0),
    }
    loaded.write_embeddings("m", [(pks[i], "h", v) for i, v in directions.items()])
    got = loaded.nearest_embeddings("m", vec(2.0, 0.0, 0.0), 3)
    assert [p for p, _ in got] == [pks["2301.00001"], pks["2301.00002"], pks["2301.00005"]]
    assert got[0][1] == pytest.approx(1.0, abs=1e-5)
    assert got[1][1] == pytest.approx(0.9 / (0.82**0.5), abs=1e-5)
    cv = loaded.nearest_embeddings("m", vec(1.0, 0.0, 0.0), 5, PaperFilter(categories=["cs.CV"]))
    assert [p for p, _ in cv] == [pks["2301.00002"], pks["2301.00003"]]
    assert loaded.nearest_embeddings("other", vec(1.0, 0.0, 0.0), 3) == []


# -- stats ----------------------------------------------------------------------------------------


def test_stats_counts_papers_vectors_and_sources(storage: Storage) -> None:
    empty = storage.stats()
    assert empty["papers"] == 0 and empty["newest_published"] is None
    storage.write_papers(CORPUS, source="arxiv_api", counts=(7, 7, 0, 0))
    pk = storage.pks_for_ids(["2301.00001"])["2301.00001"]
    storage.write_embeddings("m", [(pk, "h", vec(1.0))])
    s = storage.stats()
    assert s["papers"] == len(CORPUS)
    assert s["with_abstract"] == len(CORPUS)
    assert s["embeddings"] == 1
    assert s["newest_published"].startswith("2022-03-01")
    assert s["sources"] == {"arxiv_api": 7}
    assert s["backend"] in ("sqlite", "postgresql")


def test_since_uses_first_seen_when_published_is_unknown(storage: Storage) -> None:
    recent = datetime.now(UTC) - timedelta(days=1)
    storage.write_papers(
        [paper("x-new", "Fresh", first_seen=recent), paper("x-old", "Old", published=dt(2001))]
    )
    rows = storage.list_papers(PaperFilter(since=datetime.now(UTC) - timedelta(days=7)))
    assert [p.id for p, _ in rows] == ["x-new"]
    assert title_key("Fresh") != "x-new"


# -- subscriptions and the digest ledger -------------------------------------------------------
def _sub(storage: Storage, email: str) -> int:
    from paperradar.storage.base import Interests, Subscription

    sub = storage.save_subscription(
        Subscription(0, email, status="active", interests=Interests(queries=["q <b>"]))
    )
    return sub.id


def test_subscriptions_round_trip_and_emails_are_unique(storage: Storage) -> None:
    sid = _sub(storage, "Ada@Example.org")
    got = storage.subscription_by_email("ada@example.ORG")
    assert got is not None and got.id == sid and got.email == "ada@example.org"
    assert got.interests.queries == ["q <b>"] and got.created is not None
    got.timezone, got.weekends = "Asia/Tokyo", False
    storage.save_subscription(got)
    again = storage.get_subscription(sid)
    assert again is not None and again.timezone == "Asia/Tokyo" and again.weekends is False
    assert [s.id for s in storage.list_subscriptions("active")] == [sid]
    from paperradar.storage.base import Subscription

    with pytest.raises(StorageError, match="another subscription"):
        storage.save_subscription(Subscription(0, "ada@example.org"))


def test_digest_claims_are_exclusive_and_sent_rows_are_never_reclaimed(storage: Storage) -> None:
    a, b = _sub(storage, "a@example.org"), _sub(storage, "b@example.org")
    now = dt(2026, 6, 10, 7)
    wanted = [(a, "2026-06-10", "<m.a>"), (b, "2026-06-10", "<m.b>")]
    first = storage.claim_digests(wanted, "w1", 60, now)
    assert {(c.subscription_id, c.attempts, c.items) for c in first} == {(a, 1, None), (b, 1, None)}
    assert storage.claim_digests(wanted, "w2", 60, now) == []  # held by w1
    assert storage.save_digest_items(b, "2026-06-10", "w1", [{"id": "p1", "reasons": ["x"]}])
    assert storage.finish_digest(a, "2026-06-10", "w1", ["p1", "p2"], now)
    assert not storage.finish_digest(a, "2026-06-10", "w1", ["p1"], now)  # already done
    later = now + timedelta(seconds=61)
    taken = storage.claim_digests(wanted, "w2", 60, later)  # w1's lease on b ran out
    assert [(c.subscription_id, c.message_id, c.attempts) for c in taken] == [(b, "<m.b>", 2)]
    assert taken[0].items == [{"id": "p1", "reasons": ["x"]}]  # the same digest is re-sent
    assert not storage.finish_digest(b, "2026-06-10", "w1", [], later)  # w1 lost it
    assert storage.sent_paper_ids([a, b]) == {a: {"p1", "p2"}, b: set()}
    got = storage.get_subscription(a)
    assert got is not None and got.last_digest == now
    assert [r["state"] for r in storage.ledger(a)] == ["sent"]


def test_release_temporary_and_permanent_with_pausing(storage: Storage) -> None:
    a = _sub(storage, "a@example.org")
    now = dt(2026, 6, 10, 7)
    for day, expect in ((10, "active"), (11, "paused")):
        period = f"2026-06-{day}"
        storage.claim_digests([(a, period, f"<m{day}>")], "w", 60, now)
        assert storage.release_digest(a, period, "w", "451 later", permanent=False, pause_after=2)
        again = storage.claim_digests([(a, period, f"<m{day}>")], "w2", 60, now)
        assert len(again) == 1  # a temporary failure is claimable at once
        assert storage.release_digest(a, period, "w2", "550 gone", permanent=True, pause_after=2)
        assert storage.claim_digests([(a, period, f"<m{day}>")], "w3", 60, now) == []
        got = storage.get_subscription(a)
        assert got is not None and got.status == expect and got.last_error == "550 gone"


def test_feedback_and_reader_events(storage: Storage) -> None:
    a = _sub(storage, "a@example.org")
    now = dt(2026, 6, 10, 7)
    storage.set_feedback(a, "p1", 1, now)
    storage.set_feedback(a, "p2", -5, now)
    storage.set_feedback(a, "p1", 1, now)  # idempotent
    assert storage.feedback_for([a]) == {a: {"p1": 1, "p2": -1}}
    storage.set_feedback(a, "p2", 0, now)  # cleared
    assert storage.feedback_for([a]) == {a: {"p1": 1}}
    storage.record_event("p1", "click", now - timedelta(days=2))
    storage.record_event("p1", "click", now)
    storage.record_event("p1", "save", now)
    assert storage.event_counts(now - timedelta(days=1)) == {"p1": {"click": 1, "save": 1}}


def test_keyword_index_rebuild_is_sqlite_s_own(loaded: Storage) -> None:
    """SQLite rebuilds its keyword index from the papers; PostgreSQL's is the database's own."""
    if loaded.url.startswith("postgresql"):
        with pytest.raises(FeatureUnavailable, match="REINDEX"):
            loaded.rebuild_keyword_index()
        return
    assert loaded.rebuild_keyword_index() == len(CORPUS)
    hits = loaded.keyword_search(parse_query("diffusion"), PaperFilter(), limit=5)
    assert [h.id for h in hits] == ["2301.00006"]

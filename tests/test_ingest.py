"""Ingest: one row per paper whatever the sources, merged by the DESIGN.md rules, idempotent."""

from __future__ import annotations

import gc
from pathlib import Path

from helpers_engine import add, day, new_engine, paper
from paperradar.ingest import GC_YOUNG, merge_papers
from paperradar.model import Author, Paper, ParseProblem, Version
from paperradar.sources import Batch


def test_merge_keeps_richest_fields_unions_and_max_counts() -> None:
    old = paper(
        ["2403.01234v1"],
        "Graph Things",
        abstract="Short.",
        upvotes=3,
        categories=["cs.LG"],
        authors=[Author("Ada Lovelace", ["Cambridge"]), Author("Alan Turing")],
        versions=[Version(1, day(2024, 3, 1))],
        published=day(2024, 3, 1),
        source="arxiv_api",
    )
    new = paper(
        ["2403.01234v2"],
        "Graph Things",
        abstract="A much longer abstract about graph things.",
        upvotes=10,
        stars=5,
        categories=["cs.LG", "stat.ML"],
        authors=[Author("Ada Lovelace", ["MIT"])],
        versions=[Version(2, day(2024, 4, 1))],
        links={"code": "https://github.com/x/y"},
        source="hf_daily",
    )
    m = merge_papers(old, new)
    assert m.abstract == new.abstract
    assert (m.upvotes, m.stars, m.version) == (10, 5, 2)
    assert m.categories == ["cs.LG", "stat.ML"]
    assert m.authors[0].affiliations == ["Cambridge", "MIT"] and len(m.authors) == 2
    assert [v.version for v in m.versions] == [1, 2]
    assert m.sources == ["arxiv_api", "hf_daily"]
    assert m.links["code"] == "https://github.com/x/y"
    assert m.published == day(2024, 3, 1)
    assert merge_papers(m, m) == m


def test_reingest_is_idempotent(tmp_path: Path) -> None:
    eng = new_engine(tmp_path)
    ps = [paper([f"2401.0000{i}"], f"Paper number {i}") for i in range(5)]
    first = eng.ingest([Batch("test", list(ps))])
    second = eng.ingest([Batch("test", list(ps))])
    assert (first.new, first.updated) == (5, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 5)
    assert eng.stats()["papers"] == 5


def test_title_only_paper_merges_into_its_arxiv_row_either_order(tmp_path: Path) -> None:
    for order in ("title-first", "arxiv-first"):
        eng = new_engine(tmp_path, f"{order}.db")
        by_title = paper(
            [],
            "Attention Is All You Need",
            abstract="Full abstract from a page dump, long.",
            source="page_dump",
        )
        by_id = paper(
            ["1706.03762v7"],
            "Attention is all you need",
            abstract="Short.",
            source="arxiv_api",
            categories=["cs.CL"],
        )
        first, second = (by_title, by_id) if order == "title-first" else (by_id, by_title)
        add(eng, first)
        add(eng, second)
        assert eng.stats()["papers"] == 1, order
        p = eng.paper("1706.03762")
        assert p.id == "1706.03762"
        assert p.abstract == "Full abstract from a page dump, long."
        assert set(p.sources) == {"page_dump", "arxiv_api"}
        assert eng.search("attention", mode="keyword").hits[0].paper.id == "1706.03762"


def test_two_arxiv_papers_with_the_same_title_stay_apart(tmp_path: Path) -> None:
    eng = new_engine(tmp_path)
    add(eng, paper(["2401.00001"], "Introduction"), paper(["2401.00002"], "Introduction"))
    assert eng.stats()["papers"] == 2


def test_two_arxiv_papers_sharing_a_doi_stay_apart(tmp_path: Path) -> None:
    """Parts I and II of a paper (or a paper and its erratum) often list the same journal DOI;
    their arXiv ids say they are two papers: neither may swallow the other, in one batch or two."""
    eng = new_engine(tmp_path)
    add(eng, paper(["0704.0033", "10.1364/JOSAA.23.002578"], "Convergence I"))
    add(eng, paper(["0704.0034", "10.1364/JOSAA.23.002578"], "Convergence II"))
    add(
        eng,
        paper(["0704.0035", "10.1364/josaa.23.002578"], "Convergence III"),
        paper(["0704.0036", "10.1364/JOSAA.23.002578"], "Convergence IV"),
    )
    assert eng.stats()["papers"] == 4
    assert eng.paper("0704.0034").title == "Convergence II"


def test_doi_record_merges_into_arxiv_row_by_doi(tmp_path: Path) -> None:
    eng = new_engine(tmp_path)
    add(eng, paper(["2401.00001", "10.1000/abc"], "Some Result"))
    add(
        eng,
        paper(["10.1000/ABC"], "Some Result (journal version)", citations=42, source="openalex"),
    )
    assert eng.stats()["papers"] == 1
    assert eng.paper("2401.00001").citations == 42


def test_problems_are_counted_and_checkpoint_stored_with_the_batch(tmp_path: Path) -> None:
    eng = new_engine(tmp_path)
    batch = Batch(
        "arxiv_api",
        [paper(["2401.00001"], "A"), ParseProblem("arxiv_api", "page 1:3", "no title")],
        checkpoint={"start": 100},
    )
    report = eng.ingest([batch])
    assert (report.read, report.new, report.rejected) == (2, 1, 1)
    (state,) = eng.sources()
    assert state.checkpoint == {"start": 100}
    assert (state.seen, state.new, state.rejected) == (1, 1, 1)


def test_new_version_updates_the_paper(tmp_path: Path) -> None:
    eng = new_engine(tmp_path)
    add(eng, paper(["2401.00001v1"], "Versioned", versions=[Version(1, day(2024, 1, 1))]))
    report = eng.ingest(
        [
            Batch(
                "test",
                [paper(["2401.00001v2"], "Versioned", versions=[Version(2, day(2024, 2, 1))])],
            )
        ]
    )
    assert report.updated == 1
    p = eng.paper("arXiv:2401.00001v2")
    assert p.version == 2 and [v.version for v in p.versions] == [1, 2]


def test_demo_corpus_is_bundled_and_idempotent(tmp_path: Path) -> None:
    eng = new_engine(tmp_path)
    first = eng.ingest_demo()
    assert (first.read, first.new) == (439, 397)
    again = eng.ingest_demo()
    assert (again.new, again.updated) == (0, 0)
    assert isinstance(eng.paper(eng.search("grokking", mode="keyword").hits[0].paper.id), Paper)


def test_an_ingest_collects_garbage_less_often_and_restores_the_thresholds(tmp_path: Path) -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []
    engine = new_engine(tmp_path)
    batches = [Batch("test", [paper([f"2403.0{i}001"], f"Paper {i}")]) for i in range(3)]
    report = engine.ingest(batches, on_batch=lambda b, r: seen.append(gc.get_threshold()))
    engine.close()
    assert report.new == 3
    assert all(t[0] >= GC_YOUNG and t[1:] == before[1:] for t in seen)
    assert gc.get_threshold() == before

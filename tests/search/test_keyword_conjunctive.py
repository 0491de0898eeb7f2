"""Short keyword queries rank the papers that contain every word when there are more than a
page of them (BM25 over the OR of common words would score most of a large corpus); otherwise
the OR ranking, so a rare combination still finds papers with some of the words."""

from __future__ import annotations

from pathlib import Path

from helpers_engine import add, new_engine, paper
from paperradar.engine import Engine


def corpus(eng: Engine) -> None:
    both = [
        paper([f"2501.0000{i}"], f"Graph kernel study {i}", abstract=f"Graph kernel methods {i}.")
        for i in range(3)
    ]
    graph_only = [
        paper([f"2501.0010{i}"], f"Graph study {i}", abstract="Graph graph graph methods, again.")
        for i in range(2)
    ]
    kernel_only = [paper(["2501.00200"], "Kernel study", abstract="Kernel kernel kernel methods.")]
    add(eng, *both, *graph_only, *kernel_only)


def words(eng: Engine, pid: str) -> set[str]:
    p = eng.paper(pid)
    return set(f"{p.title} {p.abstract}".lower().replace(",", " ").replace(".", " ").split())


def test_more_than_a_page_with_every_word_pages_through_those_only(tmp_path: Path) -> None:
    with new_engine(tmp_path) as eng:
        corpus(eng)
        first = eng.search("graph kernel", mode="keyword", limit=2)
        assert len(first.hits) == 2 and first.next_cursor
        second = eng.search("graph kernel", mode="keyword", limit=2, cursor=first.next_cursor)
        ids = [h.paper.id for h in first.hits + second.hits]
        assert second.next_cursor is None and len(ids) == len(set(ids)) == 3
        assert all({"graph", "kernel"} <= words(eng, pid) for pid in ids)


def test_fewer_than_a_page_with_every_word_falls_back_to_any_word(tmp_path: Path) -> None:
    with new_engine(tmp_path) as eng:
        corpus(eng)
        hits = eng.search("graph kernel", mode="keyword", limit=10).hits
        assert len(hits) == 6  # the three with both words, and those with either
        assert all({"graph", "kernel"} <= words(eng, h.paper.id) for h in hits[:3])


def every_page(eng: Engine, query: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        result = eng.search(query, mode="keyword", limit=2, cursor=cursor)
        ids += [h.paper.id for h in result.hits]
        cursor = result.next_cursor
        if cursor is None:
            return ids


def test_one_word_and_long_queries_keep_the_plain_bm25_ranking(tmp_path: Path) -> None:
    with new_engine(tmp_path) as eng:
        five = "alpha beta gamma delta epsilon"
        add(
            eng,
            *[paper([f"2502.0000{i}"], f"Study {i}", abstract=f"{five} {i}.") for i in range(3)],
            *[paper([f"2502.0010{i}"], f"Note {i}", abstract="alpha alone.") for i in range(2)],
        )
        assert len(every_page(eng, "alpha beta gamma delta")) == 3  # four words: all of them
        assert len(every_page(eng, five)) == 5  # five words: any of them, ranked by BM25
        assert len(every_page(eng, "alpha")) == 5

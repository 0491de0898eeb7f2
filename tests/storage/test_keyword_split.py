"""An expensive keyword search runs as two halves on two threads (``KeywordIndex._halves``): each
half scores the matches in one part of the papers and the lists are merged. The result must be
exactly the single search's -- the same papers, scores and order, page after page -- whatever
the operators, filters, exclusions and cursors. Tests force the split (a threshold of 1 paper)
and make the parts alternate every 4 pks, so both halves hold matches."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tantivy

from paperradar.engine import Engine, make_engine
from paperradar.model import Author, Paper
from paperradar.querylang import Query, parse_query
from paperradar.storage import Cursor, PaperFilter
from paperradar.storage.keyword_index import ANALYZER, KeywordIndex
from paperradar.storage.sqlite import SqliteStorage

SRC = str(Path(__file__).resolve().parents[2] / "src")
WORDS = ["cancer", "cells", "gene", "expression", "tumor", "growth", "signal", "model"]
AUTHORS = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Emmy Noether"]
CATEGORIES = ["cs.LG", "q-bio.CB", "stat.ML", "math.OC"]


def paper(i: int) -> Paper:
    """Common words, repeated 1-3 times, in texts of varied length; every fifth paper has the
    text of the one before it (BM25 ties, so pages are cut inside them)."""
    rng = random.Random(i - 1 if i % 5 == 4 else i)
    words = [
        w for j, w in enumerate(WORDS) for _ in range(rng.choice([0, 1, 1, 2, 3][: 5 - j // 3]))
    ]
    rng.shuffle(words)
    filler = " ".join(f"word{rng.randrange(50)}" for _ in range(rng.randrange(2, 30)))
    published = datetime(2018, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(7 * 365))
    return Paper(
        id=f"2401.{i:05d}",
        title=" ".join(rng.sample(WORDS, 2)),
        abstract=f"{' '.join(words)} {filler}",
        authors=[Author(rng.choice(AUTHORS))],
        arxiv_id=f"2401.{i:05d}",
        categories=[rng.choice(CATEGORIES)],
        primary_category="cs.LG",
        published=None if i % 11 == 0 else published,
        sources=["test"],
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = tmp_path_factory.mktemp("split") / "kw.db"
    eng = make_engine(f"sqlite:///{db}")
    eng.storage.write_papers([paper(i) for i in range(600)])
    index = keyword_index(eng)
    index.part_shift = 2  # parts alternate every 4 pks
    eng.storage.rebuild_keyword_index()  # type: ignore[attr-defined]
    searcher = index._searcher()
    assert searcher.doc_freq("part", "0") > 250 and searcher.doc_freq("part", "1") > 250
    yield eng
    eng.close()


def keyword_index(eng: Engine) -> KeywordIndex:
    index = eng.storage.keyword_index  # type: ignore[attr-defined]
    assert isinstance(index, KeywordIndex)
    return index


def single_and_split(eng: Engine, search: Callable[[], Any], *, splits: bool = True) -> None:
    """``search()`` gives the same result with and without the split (which it takes)."""
    index = keyword_index(eng)
    index.split_min_docs = 10**9  # never
    single = search()
    index.split_min_docs = 1
    index.split_below_running = 10**9  # however busy the machine is
    before = index.split_searches
    try:
        split = search()
    finally:
        index.split_min_docs = 10**9
    assert (index.split_searches > before) == splits
    assert split == single


def every_page(eng: Engine, text: str, limit: int, sort: str = "relevance") -> list[Any]:
    out: list[Any] = []
    cursor = None
    while True:
        r = eng.search(text, mode="keyword", limit=limit, cursor=cursor, sort=sort)  # type: ignore[arg-type]
        out.append([(h.paper.id, h.score) for h in r.hits])
        if r.next_cursor is None:
            return out
        cursor = r.next_cursor


@pytest.mark.parametrize(
    "text",
    [
        "cancer cells",
        "cancer cells gene",  # three words: the whole query nested in each half
        "cancer cells gene expression",
        "cancer cells cat:q-bio",
        "cancer cells cat:cs.LG year:2020..2022",
        "cancer cells -tumor",
        'cancer cells -"gene expression"',
        "author:lovelace cancer cells",
        "title:cancer cells model",
        "abstract:cancer cells",
        '"cancer cells"',
        '"cancer cells" gene model signal tumor growth',  # long: a phrase and optional words
    ],
)
@pytest.mark.parametrize("limit", [7, 50])
def test_the_split_search_pages_through_exactly_the_single_search(
    engine: Engine, text: str, limit: int
) -> None:
    pages: list[Any] = []
    single_and_split(engine, lambda: pages.append(every_page(engine, text, limit)) or pages[-1])
    assert sum(map(len, pages[0])) >= 10  # the queries find something


def test_storage_searches_with_filters_and_cursors_are_the_same(engine: Engine) -> None:
    storage = engine.storage
    flt = PaperFilter(categories=["cs", "q-bio"], years=[(2019, 2023)], authors=["turing"])
    for text, require_all in [
        ("cancer cells", True),
        ("cancer cells gene", True),
        ('"cancer cells" -signal', False),
        ("gene expression model", True),
    ]:
        for f in (PaperFilter(), flt):

            def search(
                q: Query = parse_query(text), f: PaperFilter = f, every: bool = require_all
            ) -> list[list[tuple[int, float]]]:
                pages, after = [], None
                while True:
                    hits = storage.keyword_search(q, f, limit=9, after=after, require_all=every)
                    if not hits:
                        return pages
                    pages.append([(h.pk, h.score) for h in hits])
                    after = Cursor(hits[-1].score, hits[-1].pk)

            single_and_split(engine, search)


def test_cheap_searches_and_a_busy_machine_keep_the_single_search(engine: Engine) -> None:
    index = keyword_index(engine)
    one_word = lambda: every_page(engine, "cancer", 20)  # noqa: E731
    single_and_split(engine, one_word, splits=False)  # one word: a walk down its postings
    either = lambda: engine.storage.keyword_search(  # noqa: E731
        parse_query("cancer cells"), PaperFilter(), limit=20
    )
    single_and_split(engine, either, splits=False)  # any word: nothing to intersect
    before = index.split_searches
    index.split_min_docs = 1
    index.split_below_running = 0  # every core busy
    try:
        every_page(engine, "cancer cells", 20)
    finally:
        index.split_min_docs = 10**9
        index.split_below_running = os.cpu_count() or 1
    assert index.split_searches == before


def test_newest_first_listings_are_unchanged(engine: Engine) -> None:
    single_and_split(engine, lambda: every_page(engine, "cancer cells", 25, "date"), splits=False)


def test_threads_searching_at_once_get_the_single_search_results(engine: Engine) -> None:
    """One split thread: a search that finds it taken searches the whole itself."""
    index = keyword_index(engine)
    texts = ["cancer cells", "gene expression", "cancer cells gene", "tumor growth"] * 3
    expected = [every_page(engine, t, 30) for t in texts]
    index.split_min_docs = 1
    index.split_below_running = 10**9
    try:
        found: list[Any] = [None] * len(texts)
        start = threading.Barrier(len(texts))

        def run(i: int) -> None:
            start.wait()
            found[i] = every_page(engine, texts[i], 30)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        index.split_min_docs = 10**9
    assert found == expected


# -- an index of an older release (no ``part`` field) -----------------------------------------
def older_layout_index(folder: Path) -> tantivy.Index:
    """An empty index with the fields of the release before ``part``."""
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("pk", indexed=True, fast=True)
    for name in ("all", "title", "authors"):
        sb.add_text_field(name, tokenizer_name=ANALYZER, index_option="position")
    for name in ("cat", "src", "pid"):
        sb.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name in ("pub", "seen"):
        sb.add_integer_field(name, indexed=True, fast=True)
    for name in ("seq", "maxpk"):
        sb.add_integer_field(name, fast=True)
    folder.mkdir()
    index = tantivy.Index(sb.build(), path=str(folder))
    index.register_tokenizer(ANALYZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).build())
    return index


def synthetic(i: int) -> Paper:
    return Paper(
        id=f"2401.{i:05d}",
        title=f"Paper tok{i:05d}",
        abstract="A common abstract.",
        authors=[Author("Ada Lovelace")],
        arxiv_id=f"2401.{i:05d}",
    )


def findable(s: SqliteStorage, n: int) -> bool:
    for i in range(n):
        hits = s.keyword_search(parse_query(f"tok{i:05d}"), PaperFilter(), limit=5)
        if [h.id for h in hits] != [f"2401.{i:05d}"]:
            return False
    s.keyword_index.ensure_current()
    return bool(s.keyword_index.info()["papers"] == n)


def database_with_an_older_index(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A database of ``n`` papers whose keyword index folder holds an empty index of the
    previous release's layout: the database and the folder."""
    db = tmp_path / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([synthetic(i) for i in range(n)])
    s.close()
    folder = db.with_name(db.name + ".keywords")
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    w = older_layout_index(folder).writer(15_000_000, 1)
    w.commit()
    w.wait_merging_threads()
    return db, folder


def test_an_index_of_an_older_layout_is_rebuilt_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, _ = database_with_an_older_index(tmp_path, 20)
    caplog.set_level(logging.WARNING)
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([synthetic(20)])  # written on the rebuilt index
    assert findable(s, 21)
    s.close()
    assert "older layout" in caplog.text
    assert "building the keyword index of 20 papers (an older layout" in caplog.text
    caplog.clear()
    s = SqliteStorage(f"sqlite:///{db}")
    assert findable(s, 21)
    s.close()
    assert "keyword index" not in caplog.text  # once


HOLD_OLD = """
import sys, tantivy
index = tantivy.Index.open(sys.argv[1])
w = index.writer(15_000_000, 1)
print("holding", flush=True)
sys.stdin.readline()
"""


def test_an_older_release_writing_the_index_is_waited_for(tmp_path: Path) -> None:
    """A process of the release before holds the old index's writer: the folder goes only once
    it let go (else that process would write on in a folder that is no longer the index)."""
    db, folder = database_with_an_older_index(tmp_path, 10)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_OLD), str(folder)],
        env={**os.environ, "PYTHONPATH": SRC},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "holding"
    opened: list[SqliteStorage] = []

    def open_index() -> None:
        s = SqliteStorage(f"sqlite:///{db}")
        s.keyword_index.ensure_current()
        opened.append(s)

    opener = threading.Thread(target=open_index)
    opener.start()
    opener.join(0.5)
    assert opener.is_alive()  # waits for the old writer (LOCK_WAIT_S at most)
    holder.stdin.write("go\n")
    holder.stdin.close()
    holder.wait()
    holder.stdout.close()
    opener.join()
    (s,) = opened
    assert findable(s, 10)
    s.close()


FORKED = """
import os, sys
from paperradar.querylang import parse_query
from paperradar.storage import PaperFilter
from paperradar.storage.sqlite import SqliteStorage
s = SqliteStorage("sqlite:///" + sys.argv[1])
index = s.keyword_index
index.split_min_docs, index.split_below_running = 1, 10**9
def search():
    q = parse_query("cancer cells")
    return [h.id for h in s.keyword_search(q, PaperFilter(), limit=5, require_all=True)]
before = search()
pid = os.fork()
if pid == 0:  # the split thread of the parent is not in the child
    os._exit(0 if search() == before and index.split_searches == 2 else 1)
_, status = os.waitpid(pid, 0)
print(index.split_searches, os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_process_splits_on_a_thread_of_its_own(tmp_path: Path) -> None:
    db = tmp_path / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([paper(i) for i in range(40)])
    s.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(FORKED), str(db)],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a child that hangs goes with its parent
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None or proc.returncode:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    assert out.split() == ["1", "0"]

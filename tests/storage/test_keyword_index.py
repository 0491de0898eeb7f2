"""SQLite's keyword index (tantivy, next to the database file): the query language on it, and that
it ends up holding exactly the papers table after crashes, other processes' writes, a lost or
damaged folder, and an upgrade from the FTS5 schema."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from paperradar.model import Author, Paper
from paperradar.querylang import parse_query
from paperradar.storage import PaperFilter
from paperradar.storage.keyword_index import KEYWORD_CHANGES, category_terms
from paperradar.storage.sql import MIGRATIONS
from paperradar.storage.sqlite import SqliteStorage

SRC = str(Path(__file__).resolve().parents[2] / "src")

ROWS = [
    ("2301.00001", "Attention is all you need", "We propose the Transformer, based on attention.", "Vaswani"),
    ("2301.00002", "Deep residual learning", "Residual networks ease training of deep nets.", "Kaiming He"),
    ("2301.00003", "Gradient-based learning", "Convolutional networks for documents.", "Yann LeCun"),
    ("2301.00004", "Masked autoencoders", "Masked autoencoders are scalable vision learners.", "Kaiming He"),
    ("2301.00005", "COVID-19 vaccines", "Efficacy of mRNA vaccines against COVID-19 variants.", "Smith"),
    ("2301.00006", "Réseaux de neurones", "Apprentissage profond pour la vision.", "Dupont"),
    ("2301.00007", "深度学习", "深度学习 综述", "Li"),
    ("2301.00008", 'Quoted "title" OR NOT', "Text with AND, NEAR(x) and {braces} * ^ :", "O'Brien"),
]  # fmt: skip


def make_paper(pid: str, title: str, abstract: str, author: str, cat: str = "cs.LG") -> Paper:
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=[Author(author)],
        arxiv_id=pid,
        categories=[cat],
        primary_category=cat,
        sources=["test"],
    )


def synthetic(i: int) -> Paper:
    """Paper ``i`` carries the word ``tokNNNN`` (and ``common``) so a search finds exactly it."""
    return make_paper(f"2401.{i:05d}", f"Paper tok{i:05d}", "A common abstract.", "Ada Lovelace")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kw.db'}"


@pytest.fixture
def loaded(url: str) -> Iterator[SqliteStorage]:
    s = SqliteStorage(url)
    s.write_papers([make_paper(*row) for row in ROWS])
    yield s
    s.close()


def ids(storage: SqliteStorage, text: str, flt: PaperFilter | None = None) -> list[str]:
    return [h.id for h in storage.keyword_search(parse_query(text), flt or PaperFilter(), limit=50)]


def all_findable(storage: SqliteStorage) -> bool:
    """Every paper is found by its own word, and the index holds nothing else."""
    with storage.engine.connect() as conn:
        pids = sorted(conn.execute(sa.text("SELECT id FROM papers")).scalars())
    for pid in pids:
        if ids(storage, "tok" + pid.split(".")[1]) != [pid]:
            return False
    storage.keyword_index.ensure_current()
    return bool(storage.keyword_index.info()["papers"] == len(pids))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attention", [1]),
        ("residual networks", [2, 3]),  # OR: both words rank first
        ('"masked autoencoders"', [4]),
        ('"autoencoders masked"', []),
        ("vaccine", [5]),  # stemming
        ("covid-19", [5]),
        ("reseaux", [6]),  # accents folded
        ("深度学习", [7]),
        ("title:masked", [4]),
        ("abstract:masked", [4]),
        ("abstract:learning", []),  # only in titles
        ("title:convolutional", []),
        ("author:he", [2, 4]),
        ('author:"yann lecun"', [3]),
        ("author:he author:lecun", [2, 3, 4]),
        ("author:he masked", [2, 4]),
        ("networks -convolutional", [2]),
        ('networks -"residual networks"', [3]),
        ('"title" OR NOT', [8]),
        ('NEAR(x) {braces} "*" ^ :', [8]),
        ("o'brien", [8]),
    ],
)
def test_the_query_language_finds_the_right_papers(
    loaded: SqliteStorage, text: str, expected: list[int]
) -> None:
    found = [int(pid.split(".")[1]) for pid in ids(loaded, text)]
    if "author:he" in text:  # near-equal scores: order is not the point
        assert sorted(found) == expected
    else:
        assert found == expected


def test_require_all_needs_every_word(loaded: SqliteStorage) -> None:
    q = parse_query("residual networks training")
    hits = loaded.keyword_search(q, PaperFilter(), require_all=True)
    assert [h.id for h in hits] == ["2301.00002"]


def test_category_terms_cover_every_prefix_cat_may_name() -> None:
    assert category_terms(["cs.LG", "q-bio.NC"]) == {"cs.lg", "cs", "q-bio.nc", "q-bio", "q"}


def test_filters_narrow_inside_the_index(loaded: SqliteStorage) -> None:
    loaded.write_papers([make_paper("2301.00009", "Attention in physics", "", "Bohr", "hep-th")])
    assert ids(loaded, "attention", PaperFilter(categories=["hep"])) == ["2301.00009"]
    assert ids(loaded, "attention", PaperFilter(categories=["cs."])) == ["2301.00001"]
    assert ids(loaded, "attention", PaperFilter(ids=["2301.00009"])) == ["2301.00009"]
    assert ids(loaded, "attention", PaperFilter(sources=["nowhere"])) == []
    assert ids(loaded, "attention", PaperFilter(years=[(2020, None)])) == []  # no dates


def test_pages_follow_the_cursor_without_repeats(url: str) -> None:
    s = SqliteStorage(url)
    s.write_papers([synthetic(i) for i in range(150)])
    seen: list[str] = []
    after = None
    while True:
        page = s.keyword_search(parse_query("common"), PaperFilter(), limit=40, after=after)
        if not page:
            break
        seen += [h.id for h in page]
        from paperradar.storage import Cursor

        after = Cursor(page[-1].score, page[-1].pk)
    s.close()
    assert sorted(seen) == sorted(p.id for p in map(synthetic, range(150)))


def test_a_first_page_cut_inside_a_tie_is_the_highest_pks(url: str) -> None:
    """The index is asked for one hit more than the page; when that one ties with the page's
    last, it looks deeper, so the page is still the best by (score, pk) of every match."""
    s = SqliteStorage(url)
    s.write_papers([synthetic(i) for i in range(150)])
    s.write_papers([make_paper("2402.00001", "Common common", "A common abstract.", "Ada")])
    page = s.keyword_search(parse_query("common"), PaperFilter(), limit=6)
    pks = s.pks_for_ids([synthetic(i).id for i in range(150)])
    s.close()
    assert page[0].id == "2402.00001"  # the word twice: the best score
    assert [h.pk for h in page[1:]] == sorted(pks.values(), reverse=True)[:5]
    assert len({h.score for h in page[1:]}) == 1


def test_updates_and_deletes_reach_the_index(loaded: SqliteStorage) -> None:
    loaded.write_papers([make_paper("2301.00001", "Renamed", "Nothing here.", "Vaswani")])
    assert ids(loaded, "attention") == []
    assert ids(loaded, "renamed") == ["2301.00001"]
    loaded.write_papers([], deletes=["2301.00002"])
    assert ids(loaded, "residual") == []


def _run(code: str, db: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(db)],
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


PRELUDE = """
import os, sys
from paperradar.model import Author, Paper
from paperradar.storage.sqlite import SqliteStorage
def synthetic(i):
    return Paper(id=f"2401.{i:05d}", title=f"Paper tok{i:05d}", abstract="A common abstract.",
                 authors=[Author("Ada Lovelace")], arxiv_id=f"2401.{i:05d}")
s = SqliteStorage("sqlite:///" + sys.argv[1])
"""


def test_another_process_writes_reach_a_long_lived_reader(tmp_path: Path) -> None:
    db = tmp_path / "kw.db"
    reader = SqliteStorage(f"sqlite:///{db}")
    reader.write_papers([synthetic(0)])
    assert ids(reader, "tok00000") == ["2401.00000"]
    _run(PRELUDE + "s.write_papers([synthetic(1), synthetic(2)]); s.close()", db)
    assert ids(reader, "tok00002") == ["2401.00002"]
    assert all_findable(reader)
    reader.close()


def test_a_writer_that_dies_before_the_index_commit_is_caught_up(tmp_path: Path) -> None:
    db = tmp_path / "kw.db"
    reader = SqliteStorage(f"sqlite:///{db}")
    assert ids(reader, "common") == []
    # The first batch commits the index (first use); the second stays in tantivy's writer and
    # the process dies without close(): the papers are in SQLite, not in the committed index.
    _run(
        PRELUDE
        + "s.write_papers([synthetic(1)]); s.write_papers([synthetic(2), synthetic(3)])\n"
        + "os._exit(0)",
        db,
    )
    assert ids(reader, "tok00003") == ["2401.00003"]
    assert all_findable(reader)
    reader.close()


def test_an_ingest_killed_with_sigkill_leaves_a_correct_index(tmp_path: Path) -> None:
    db = tmp_path / "kw.db"
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w") as fh:
        for i in range(30_000):
            p = {"id": f"2401.{i:05d}", "arxiv_id": f"2401.{i:05d}", "title": f"Paper tok{i:05d}"}
            fh.write(json.dumps(p | {"abstract": "A common abstract."}) + "\n")
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paperradar",
            "--db",
            f"sqlite:///{db}",
            "ingest",
            "jsonl",
            *[str(corpus)],
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        while proc.poll() is None:  # kill it once it has written some batches
            try:
                with engine.connect() as conn:
                    n = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar_one()
            except sa.exc.OperationalError:
                n = 0
            if n >= 5_000:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        engine.dispose()
    s = SqliteStorage(f"sqlite:///{db}")
    with s.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar_one()
    assert stored > 0
    hits = s.keyword_search(parse_query("common"), PaperFilter(), limit=5)
    assert len(hits) == 5
    s.keyword_index.ensure_current()
    assert s.keyword_index.info()["papers"] == stored
    s.close()


def test_a_writer_held_by_another_process_never_breaks_a_search(tmp_path: Path) -> None:
    db = tmp_path / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([synthetic(0)])
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PRELUDE + HOLD), str(db)],
        env={**os.environ, "PYTHONPATH": SRC},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "holding"
    s.write_papers([synthetic(1)])  # cannot index now: the other process holds the writer
    assert ids(s, "tok00000") == ["2401.00000"]  # the last commit still serves
    holder.stdin.write("go\n")
    holder.stdin.close()
    holder.wait()
    holder.stdout.close()
    assert ids(s, "tok00001") == ["2401.00001"]
    assert all_findable(s)
    s.close()


HOLD = """
s.keyword_index.ensure_current()
w = s.keyword_index._take_writer(wait=30)  # ours lets go of it after IDLE_RELEASE_S
print("holding", flush=True)
sys.stdin.readline()  # exiting frees the writer's lock
"""


def _index_dir(db: Path) -> Path:
    return db.with_name(db.name + ".keywords")


@pytest.mark.parametrize("damage", ["missing", "garbage", "foreign"])
def test_a_lost_damaged_or_foreign_index_is_rebuilt(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([synthetic(i) for i in range(20)])
    s.close()
    folder = _index_dir(db)
    if damage == "missing":
        shutil.rmtree(folder)
    elif damage == "garbage":
        for f in folder.iterdir():
            f.write_bytes(b"\x00garbage")
    else:  # the folder of another database, further along its own keyword_changes
        other = tmp_path / "other.db"
        o = SqliteStorage(f"sqlite:///{other}")
        o.write_papers([synthetic(i) for i in range(100, 160)])
        o.close()
        shutil.rmtree(folder)
        shutil.copytree(_index_dir(other), folder)
    caplog.set_level(logging.WARNING)
    s = SqliteStorage(f"sqlite:///{db}")
    assert all_findable(s)
    assert ids(s, "tok00100") == []
    assert "keyword index" in caplog.text
    s.close()


def test_threads_searching_a_missing_index_build_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A digest run searches from several threads at once: they share one index, and a
    missing index is built once, not once per thread."""
    db = tmp_path / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([synthetic(i) for i in range(40)])
    s.close()
    shutil.rmtree(_index_dir(db))
    caplog.set_level(logging.WARNING)
    s = SqliteStorage(f"sqlite:///{db}")
    start = threading.Barrier(6)

    def search(i: int) -> tuple[int, list[str]]:
        start.wait()
        return id(s.keyword_index), ids(s, f"tok{i:05d}")

    with ThreadPoolExecutor(6) as pool:
        found = list(pool.map(search, range(6)))
    assert len({index for index, _ in found}) == 1
    assert [hits for _, hits in found] == [[f"2401.{i:05d}"] for i in range(6)]
    assert caplog.text.count("building the keyword index of 40 papers") == 1
    s.close()


def test_an_fts5_database_gets_its_index_on_first_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "kw.db"
    s = SqliteStorage(f"sqlite:///{db}")
    s.write_papers([synthetic(i) for i in range(30)])
    engine = s.engine
    with engine.begin() as conn:  # back to the FTS5 schema (0005), as an old install has it
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        fts_rows = conn.execute(sa.text("SELECT count(*) FROM papers_fts")).scalar_one()
    assert fts_rows == 30
    s.close()
    shutil.rmtree(_index_dir(db))
    caplog.set_level(logging.WARNING)
    s = SqliteStorage(f"sqlite:///{db}")  # upgrades: papers_fts goes, keyword_changes comes
    with s.engine.connect() as conn:
        names = set(conn.execute(sa.text("SELECT name FROM sqlite_master")).scalars())
        assert conn.execute(sa.select(sa.func.count()).select_from(KEYWORD_CHANGES)).scalar() == 0
    assert "papers_fts" not in names
    assert all_findable(s)
    assert "building the keyword index of 30 papers" in caplog.text
    s.close()


def test_rebuild_by_command_repairs_an_index_that_looks_current(url: str, tmp_path: Path) -> None:
    """A title changed behind the index's back (a restored database, a hand edit) keeps the same
    paper count, so the index cannot notice; ``paperradar index rebuild --what keyword`` repairs
    it and reports its progress and count."""
    from typer.testing import CliRunner

    from paperradar.cli import app

    s = SqliteStorage(url)
    s.write_papers([synthetic(i) for i in range(30)])
    s.close()
    db = url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as raw:  # behind the index's back: no keyword_changes row
        raw.execute("UPDATE papers SET title = 'Paper quokka' WHERE id = '2401.00007'")
    s = SqliteStorage(url)
    assert ids(s, "quokka") == []
    seen: list[tuple[int, int]] = []
    assert s.rebuild_keyword_index(lambda done, total: seen.append((done, total))) == 30
    assert seen and seen[-1] == (30, 30)
    assert ids(s, "quokka") == ["2401.00007"]
    s.close()

    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE papers SET title = 'Paper wombat' WHERE id = '2401.00009'")
    result = CliRunner().invoke(
        app, ["--db", db, "index", "rebuild", "--what", "keyword", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["keyword"]["papers"] == 30 and "vectors" not in report
    s = SqliteStorage(url)
    assert ids(s, "wombat") == ["2401.00009"] and ids(s, "quokka") == ["2401.00007"]
    assert ids(s, "tok00009") == [] and ids(s, "tok00003") == ["2401.00003"]
    s.close()

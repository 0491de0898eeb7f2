"""Compiled queries run on a real FTS5 table, find the right rows, and never break FTS5 syntax."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.errors import InvalidQuery
from paperradar.querylang import parse_query
from paperradar.storage.fts import (
    CREATE_FTS_TABLE,
    FTS_TABLE,
    STOP_WORDS,
    bm25_expression,
    category_matches,
    compile_exclusion,
    compile_highlight_match,
    compile_match,
    compile_query,
    fts_string,
)

ROWS = [
    (1, "Attention is all you need", "We propose the Transformer, based on attention.", "Vaswani"),
    (2, "Deep residual learning", "Residual networks ease training of deep nets.", "Kaiming He"),
    (3, "Gradient-based learning", "Convolutional networks for documents.", "Yann LeCun"),
    (4, "Masked autoencoders", "Masked autoencoders are scalable vision learners.", "Kaiming He"),
    (5, "COVID-19 vaccines", "Efficacy of mRNA vaccines against COVID-19 variants.", "Smith"),
    (6, "Réseaux de neurones", "Apprentissage profond pour la vision.", "Dupont"),
    (7, "深度学习", "深度学习 综述", "Li"),
    (8, 'Quoted "title" OR NOT', "Text with AND, NEAR(x) and {braces} * ^ :", "O'Brien"),
]


def make_table() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(CREATE_FTS_TABLE)
    db.executemany(
        f"INSERT INTO {FTS_TABLE}(rowid, title, abstract, authors) VALUES (?,?,?,?)", ROWS
    )
    return db


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = make_table()
    yield conn
    conn.close()


def search(db: sqlite3.Connection, text: str) -> list[int]:
    q = parse_query(text)
    match = compile_match(q)
    if match is None:
        return []
    sql = (
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? "
        f"ORDER BY {bm25_expression()}, rowid"
    )
    return [r for (r,) in db.execute(sql, (match,))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attention", [1]),
        ("residual networks", [2, 3]),  # OR: both terms rank first
        ('"masked autoencoders"', [4]),
        ('"autoencoders masked"', []),
        ("vaccine", [5]),  # porter stemming
        ("covid-19", [5]),
        ("reseaux", [6]),  # diacritics removed
        ("深度学习", [7]),
        ("title:masked", [4]),
        ("abstract:masked", [4]),
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
def test_compiled_queries_find_the_right_rows(
    db: sqlite3.Connection, text: str, expected: list[int]
) -> None:
    found = search(db, text)
    if text.startswith("author:he"):  # near-equal scores: order is not the point
        assert sorted(found) == expected
    else:
        assert found == expected


def test_or_ranks_documents_with_more_terms_first(db: sqlite3.Connection) -> None:
    assert search(db, "residual networks training")[0] == 2


def test_stop_words_are_dropped_from_the_ranking_or() -> None:
    assert "the" in STOP_WORDS
    assert compile_match(parse_query("the transformer of")) == '"transformer"'
    assert compile_match(parse_query("the of")) is None
    # phrases keep them
    assert compile_match(parse_query('"state of the art"')) == '"state of the art"'


def test_require_all_needs_every_term(db: sqlite3.Connection) -> None:
    match = compile_match(parse_query("residual networks training"), require_all=True)
    assert match is not None
    sql = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?"
    assert [r for (r,) in db.execute(sql, (match,))] == [2]


def test_fts_string_quotes_and_drops_nul() -> None:
    assert fts_string('a "b"\x00') == '"a ""b"""'


def test_exclusion_only_queries_give_an_exclusion_match(db: sqlite3.Connection) -> None:
    q = parse_query("-masked -covid")
    assert compile_match(q) is None
    compiled = compile_query(q, datetime(2025, 1, 1, tzinfo=UTC))
    assert compiled.exclude_match == compile_exclusion(q)
    assert compiled.exclude_match is not None
    sql = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?"
    assert sorted(r for (r,) in db.execute(sql, (compiled.exclude_match,))) == [4, 5]


def test_filters_are_resolved() -> None:
    q = parse_query("cat:cs year:2020.. since:7d since:2024-12-01 source:hf_daily")
    c = compile_query(q, datetime(2025, 1, 10, tzinfo=UTC))
    assert c.match is None and c.exclude_match is None
    assert c.published_after == datetime(2024, 12, 1, tzinfo=UTC)
    assert c.categories == ("cs",) and c.sources == ("hf_daily",)
    assert 2023 in c.years[0] and 2019 not in c.years[0]
    assert date(2024, 12, 1) in q.since


@pytest.mark.parametrize(
    ("pattern", "category", "expected"),
    [
        ("cs", "cs.LG", True),
        ("cs.lg", "cs.LG", True),
        ("cs.LG", "cs.LO", False),
        ("hep", "hep-th", True),
        ("cs", "cond-mat.stat-mech", False),
        ("c", "cs.LG", False),
        ("cs.", "cs.AI", True),
    ],
)
def test_category_prefix_matching(pattern: str, category: str, expected: bool) -> None:
    assert category_matches(pattern, category) is expected


def test_highlight_match_keeps_stop_words() -> None:
    assert compile_highlight_match(parse_query("the cat")) == '("the" OR "cat")'
    assert compile_highlight_match(parse_query("-x cat:cs")) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.booleans())
def test_any_parsed_query_compiles_to_valid_fts5(text: str, require_all: bool) -> None:
    try:
        q = parse_query(text)
    except InvalidQuery:
        return
    db = _shared_db()
    for match in (
        compile_match(q, require_all=require_all),
        compile_exclusion(q),
        compile_highlight_match(q),
    ):
        if match is not None:
            db.execute(
                f"SELECT rowid, {bm25_expression()} FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?",
                (match,),
            ).fetchall()


_DB: list[sqlite3.Connection] = []


def _shared_db() -> sqlite3.Connection:
    if not _DB:
        _DB.append(make_table())
    return _DB[0]

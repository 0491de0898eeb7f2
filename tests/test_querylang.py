"""The query language: what users type becomes the AST the engine runs, or a located error."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.errors import InvalidQuery
from paperradar.querylang import (
    FIELDS,
    MAX_QUERY_CHARS,
    MAX_TERMS,
    FieldTerm,
    Query,
    RelativeTime,
    YearRange,
    parse_query,
)


def test_bare_terms_phrases_and_exclusions() -> None:
    q = parse_query('diffusion "masked autoencoder" -gan -"style transfer" transformer')
    assert q.terms == ("diffusion", "transformer")
    assert q.phrases == ("masked autoencoder",)
    assert q.excluded_terms == ("gan",)
    assert q.excluded_phrases == ("style transfer",)
    assert q.free_text == "diffusion transformer masked autoencoder"


def test_field_filters() -> None:
    q = parse_query(
        'author:"Yann LeCun" author:hinton cat:cs.LG cat:cs year:2020..2024 year:2023 '
        "since:7d since:2025-01-31 source:hf_daily id:arXiv:2403.01234v2 title:attention "
        'abstract:"graph neural"'
    )
    assert q.authors == ("Yann LeCun", "hinton")
    assert q.categories == ("cs.LG", "cs")
    assert q.years == (YearRange(2020, 2024), YearRange(2023, 2023))
    assert q.since == (RelativeTime(7, "d"), date(2025, 1, 31))
    assert q.sources == ("hf_daily",)
    assert q.ids == ("2403.01234",)
    assert q.field_terms == (FieldTerm("title", "attention"), FieldTerm("abstract", "graph neural"))
    assert q.terms == () and q.has_filters and q.has_text


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("year:2020..", YearRange(2020, None)),
        ("year:..2024", YearRange(None, 2024)),
        ("year:2021..2021", YearRange(2021, 2021)),
    ],
)
def test_open_year_ranges(text: str, years: YearRange) -> None:
    assert parse_query(text).years == (years,)


def test_field_names_are_case_insensitive_and_or_is_accepted() -> None:
    q = parse_query("Title:bert OR roberta")
    assert q.field_terms == (FieldTerm("title", "bert"),)
    assert q.terms == ("roberta",)


def test_relative_since_cutoffs_use_calendar_months() -> None:
    now = datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert RelativeTime(1, "m").cutoff(now) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert RelativeTime(2, "w").cutoff(now) == datetime(2025, 3, 17, 12, tzinfo=UTC)
    assert RelativeTime(1, "y").cutoff(now) == datetime(2024, 3, 31, 12, tzinfo=UTC)
    assert RelativeTime(999999, "y").cutoff(now).year == 1


@pytest.mark.parametrize("text", ["", "   ", "the of and", "-gan", "cat:cs"])
def test_degenerate_queries_are_valid(text: str) -> None:
    q = parse_query(text)
    assert not q.phrases and not q.field_terms


def test_non_latin_text_is_kept() -> None:
    q = parse_query('深度学习 "réseaux de neurones" Нейронные')
    assert q.terms == ("深度学习", "Нейронные")
    assert q.phrases == ("réseaux de neurones",)


def test_long_queries_are_truncated_not_rejected() -> None:
    q = parse_query(" ".join(f"w{i}" for i in range(500)))
    assert len(q.terms) == MAX_TERMS and q.truncated
    q = parse_query('x "' + "y " * MAX_QUERY_CHARS + '"')
    assert q.truncated and q.terms == ("x",) and q.phrases[0].startswith("y y")


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("foo bar:baz", 4, ["'bar'", "title:", "author:", "year:"]),
        ('a "unclosed phrase', 2, ["quote"]),
        ("title: x", 6, ["empty", "title:"]),
        ('author:"" x', 7, ["empty"]),
        ("x year:2024..2020", 7, ["starts after"]),
        ("year:20x", 5, ["bad year"]),
        ("year:..", 5, ["bad year"]),
        ("since:7x", 6, ["since"]),
        ("since:2025-02-30", 6, ["since"]),
        ("since:0d", 6, ["positive"]),
        ("id:notanid", 3, ["arXiv id"]),
        ("a -cat:cs", 2, ["cannot exclude"]),
        ("cat:c$", 4, ["category"]),
    ],
)
def test_errors_carry_position_and_a_helpful_message(
    text: str, position: int, words: list[str]
) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(text)
    assert info.value.position == position
    assert info.value.query == text
    for word in words:
        assert word in info.value.reason


def test_str_is_canonical() -> None:
    q = parse_query('-gan title:"a b" x author:"Y L" "p q" year:2020.. since:2w id:2403.01234')
    assert str(q) == 'x "p q" title:"a b" -gan author:"Y L" year:2020.. since:2w id:2403.01234'


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_invalid_query(text: str) -> None:
    try:
        q = parse_query(text)
    except InvalidQuery as e:
        assert e.position is not None and 0 <= e.position <= len(text)
        return
    assert isinstance(q, Query)


_ALPHABET = st.sampled_from(
    list('ab zé深-":.0129') + [f"{f}:" for f in FIELDS] + ["OR", "..", "2024", "7d", "\t", "\x00"]
)


@settings(max_examples=400)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_str_round_trips_through_the_parser(text: str) -> None:
    try:
        q = parse_query(text)
    except InvalidQuery:
        return
    again = parse_query(str(q))
    assert again == q
    assert str(again) == str(q)


_WORD = (
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)
    .map(lambda w: unicodedata.normalize("NFC", w))
    .filter(lambda w: len(w.split()) == 1)
)
_PHRASE = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    terms = tuple(t for t in draw(st.lists(_WORD, max_size=4)) if t != "OR")
    return Query(
        terms=terms,
        phrases=tuple(draw(st.lists(_PHRASE, max_size=2))),
        excluded_terms=tuple(draw(st.lists(_WORD, max_size=2))),
        excluded_phrases=tuple(draw(st.lists(_PHRASE, max_size=2))),
        field_terms=tuple(
            FieldTerm(draw(st.sampled_from(["title", "abstract"])), p)
            for p in draw(st.lists(_PHRASE, max_size=2))
        ),
        authors=tuple(draw(st.lists(_PHRASE, max_size=2))),
        categories=tuple(draw(st.lists(st.sampled_from(["cs", "cs.LG", "hep-th"]), max_size=2))),
        years=tuple(
            YearRange(a, b)
            for a, b in draw(
                st.lists(st.tuples(st.integers(1000, 2000), st.integers(2000, 9999)), max_size=2)
            )
        ),
        since=tuple(
            draw(
                st.lists(
                    st.one_of(
                        st.builds(RelativeTime, st.integers(1, 999), st.sampled_from("dwmy")),
                        st.dates(min_value=date(1000, 1, 1)),
                    ),
                    max_size=2,
                )
            )
        ),
        sources=tuple(draw(st.lists(st.sampled_from(["hf_daily", "arxiv"]), max_size=2))),
        ids=tuple(draw(st.lists(st.sampled_from(["2403.01234", "doi:10.1000/x"]), max_size=2))),
    )


@settings(max_examples=300)
@given(queries())
def test_any_query_survives_str_and_parse(q: Query) -> None:
    assert parse_query(str(q)) == q

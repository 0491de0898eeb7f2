"""Hypothesis feeds mutated real inputs to the two file parsers the source modules share with the
CLI — page dumps (the seed pages) and our JSON lines (an export of them): never an unhandled
exception, every paper complete, every problem located."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.model import Paper, ParseProblem, paper_to_dict
from paperradar.sources.jsonl import parse_jsonl
from paperradar.sources.pages import parse_page_dump

from .mutations import check_parser, mutated

SETTINGS = hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def page_sample(shared_dir: Path) -> bytes:
    data = (shared_dir / "seeds" / "001_14390e7cdf2d219c.txt").read_bytes()
    return data[: data.find(b"\n", 12_000)]  # a dozen entries keep each example fast


@pytest.fixture(scope="module")
def jsonl_sample(page_sample: bytes) -> bytes:
    papers = [r for r in parse_page_dump(page_sample) if isinstance(r, Paper)]
    return b"".join(json.dumps(paper_to_dict(p)).encode() + b"\n" for p in papers)


@given(data=st.data())
@SETTINGS
def test_mutated_page_dumps_never_crash(page_sample: bytes, data: st.DataObject) -> None:
    damaged = data.draw(mutated(page_sample))
    check_parser(lambda d: parse_page_dump(d, location="p.txt"), damaged)
    try:
        records = list(parse_page_dump(damaged, location="p.txt"))
    except Exception:
        return
    for rec in records:
        if isinstance(rec, Paper):
            assert rec.title and rec.abstract and rec.id.startswith("title:")
        else:
            assert rec.location.startswith("p.txt:")


@given(text=st.text(max_size=400))
@SETTINGS
def test_any_text_is_a_page_dump_or_a_clear_error(text: str) -> None:
    check_parser(parse_page_dump, text.encode("utf-8", "surrogatepass"))


@given(data=st.data())
@SETTINGS
def test_mutated_jsonl_never_crashes_and_names_lines(
    jsonl_sample: bytes, data: st.DataObject
) -> None:
    damaged = data.draw(mutated(jsonl_sample))
    lines = damaged.count(b"\n") + 1
    records = list(parse_jsonl(io.BytesIO(damaged), location="x.jsonl"))
    check_parser(lambda d: parse_jsonl(io.BytesIO(d), location="x.jsonl"), damaged)
    for rec in records:
        assert isinstance(rec, Paper | ParseProblem)
        if isinstance(rec, ParseProblem) and rec.location != "x.jsonl":
            assert 1 <= int(rec.location.rsplit(":", 1)[1]) <= lines


@given(
    lines=st.lists(
        st.one_of(
            st.binary(max_size=60),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda kids: (
                    st.lists(kids, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(["title", "id", "arxiv_id", "doi", "authors", "abstract"]),
                        kids,
                        max_size=4,
                    )
                ),
                max_leaves=8,
            ).map(lambda v: json.dumps(v).encode()),
        ),
        max_size=6,
    )
)
@SETTINGS
def test_any_json_lines_parse_or_are_problems(lines: list[bytes]) -> None:
    check_parser(lambda d: parse_jsonl(io.BytesIO(d)), b"\n".join(lines))

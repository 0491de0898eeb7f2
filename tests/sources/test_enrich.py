"""Semantic Scholar and OpenAlex citation enrichment: real bodies, nulls, 404s, batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.config import Settings
from paperradar.errors import SourceError
from paperradar.model import Paper, ParseProblem
from paperradar.sources.enrich import (
    fetch_openalex,
    fetch_semantic_scholar,
    not_found_id,
    parse_openalex,
    parse_semantic_scholar,
)
from paperradar.sources.http import PoliteClient

from .mutations import check_parser, mutated
from .replay_server import ReplayServer, Reply


def _s2(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "semantic_scholar/from_paperqa" / name).read_bytes()


def _oa(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "openalex" / name).read_bytes()


def test_s2_arxiv_paper(fixtures_dir: Path) -> None:
    (p,) = parse_semantic_scholar(_s2(fixtures_dir, "test_bulk_doi_search__4_200.json"))
    assert isinstance(p, Paper) and p.id == "2312.07559" and p.citations == 111
    assert p.sources == ["semantic_scholar"] and p.extra["influential_citations"] == 2


def test_s2_batch_with_null_is_not_found(fixtures_dir: Path) -> None:
    cassette = yaml.safe_load(
        (fixtures_dir / "semantic_scholar/test_get_papers_not_found_warning.yaml").read_text()
    )
    body = cassette["interactions"][0]["response"]["body"]["string"].encode()
    asked = json.loads(cassette["interactions"][0]["request"]["body"])["ids"]
    recs = list(parse_semantic_scholar(body, "batch", requested=asked))
    assert isinstance(recs[0], ParseProblem) and not_found_id(recs[0]) == asked[0]
    assert isinstance(recs[1], Paper) and recs[1].id == "doi:10.2139/ssrn.288970"
    assert recs[1].citations is not None and recs[1].extra["reference_count"] >= 0


def test_s2_empty_search_and_error(fixtures_dir: Path) -> None:
    assert list(parse_semantic_scholar(b'{"total": 0, "offset": 0}')) == []
    assert (
        list(
            parse_semantic_scholar(_s2(fixtures_dir, "test_s2_title_search_empty_data__0_200.json"))
        )
        == []
    )
    with pytest.raises(SourceError, match="not found"):
        list(parse_semantic_scholar(_s2(fixtures_dir, "test_bulk_doi_search__3_404.json")))


def test_openalex_arxiv_work_and_abstract(fixtures_dir: Path) -> None:
    (p,) = parse_openalex(_oa(fixtures_dir, "test_title_search_paper_attributes1___2_200.json"))
    assert isinstance(p, Paper) and p.id == "2312.07559" and p.citations == 27
    assert p.extra["openalex_id"] == "W4389761608"
    (q,) = parse_openalex(_oa(fixtures_dir, "test_doi_search_paper_attributes4___2_200.json"))
    assert isinstance(q, Paper) and q.id == "doi:10.1073/pnas.1414271111" and q.citations
    assert q.extra["reference_count"] == len(q.extra["referenced_works"]) > 0


def test_openalex_html_404_body_is_a_source_error(fixtures_dir: Path) -> None:
    with pytest.raises(SourceError, match="not valid JSON"):
        list(
            parse_openalex(
                _oa(fixtures_dir, "test_does_openalex_work_not-in-openalex___0_404.json")
            )
        )


@given(data=st.data())
@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_bodies_never_crash(fixtures_dir: Path, data: st.DataObject) -> None:
    check_parser(
        parse_semantic_scholar,
        data.draw(mutated(_s2(fixtures_dir, "test_bulk_doi_search__4_200.json"))),
    )
    check_parser(
        parse_openalex,
        data.draw(mutated(_oa(fixtures_dir, "test_title_search_paper_attributes1___2_200.json"))),
    )


def test_fetch_s2_batches_post_ids(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    one = json.loads(_s2(fixtures_dir, "test_bulk_doi_search__4_200.json"))
    server.route("/graph/v1/paper/batch", Reply(200, json.dumps([one, None]).encode()))
    (batch,) = fetch_semantic_scholar(client, settings, ["2312.07559", "10.1046/missing"])
    assert json.loads(server.requests[0].body) == {
        "ids": ["ARXIV:2312.07559", "DOI:10.1046/missing"]
    }
    assert "citationCount" in server.requests[0].query["fields"][0]
    assert isinstance(batch.records[0], Paper) and batch.records[0].citations == 111
    assert (
        isinstance(batch.records[1], ParseProblem)
        and not_found_id(batch.records[1]) == "10.1046/missing"
    )
    assert batch.checkpoint == {"offset": 2}


def test_fetch_openalex_404_is_not_found(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    server.route(
        "/openalex/works/https://doi.org/10.48550/arxiv.2312.07559",
        Reply(200, _oa(fixtures_dir, "test_title_search_paper_attributes1___2_200.json")),
    )
    batches = list(fetch_openalex(client, settings, ["2312.07559", "10.1046/nothing"]))
    recs = [r for b in batches for r in b.records]
    assert isinstance(recs[0], Paper) and recs[0].citations == 27
    assert isinstance(recs[1], ParseProblem) and not_found_id(recs[1]) == "10.1046/nothing"
    assert batches[-1].checkpoint == {"offset": 2}

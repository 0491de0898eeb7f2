"""arXiv API: real 2026 and 2016 Atom responses, the error feed, paging and resume."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.config import Settings
from paperradar.errors import SourceError
from paperradar.model import Paper
from paperradar.sources.arxiv_api import fetch_arxiv, parse_arxiv_atom, parse_arxiv_page
from paperradar.sources.http import PoliteClient

from .mutations import check_parser, mutated
from .replay_server import ReplayServer, Reply


def _one(fixtures_dir: Path, pattern: str) -> bytes:
    (path,) = sorted(fixtures_dir.glob(f"arxiv_api/*/{pattern}"))
    return path.read_bytes()


def test_old_style_id_with_affiliations_comment_journal_ref(fixtures_dir: Path) -> None:
    (paper,) = parse_arxiv_atom(_one(fixtures_dir, "id_astro-ph_0601001*.xml"))
    assert isinstance(paper, Paper)
    assert paper.id == "astro-ph/0601001" and paper.version == 1
    assert paper.sources == ["arxiv_api"]
    assert paper.authors[0].name == "Andrew Gould"
    assert paper.authors[0].affiliations == ["Ohio State"]
    assert paper.authors[2].affiliations == ["CfA"]
    assert paper.categories == ["astro-ph"] and paper.primary_category == "astro-ph"
    assert paper.extra["journal_ref"] == "ActaAstron.56:1-50,2006"
    assert paper.extra["comment"].startswith("62 pages")
    assert paper.abstract.startswith("We derive the frequencies")  # leading spaces gone
    assert "V_max<17.5" in paper.abstract  # entity unescaped exactly once
    assert paper.published == datetime(2006, 1, 2, 14, 57, 58, tzinfo=UTC)
    assert paper.links["pdf"] == "https://arxiv.org/pdf/astro-ph/0601001v1"


def test_legacy_feed_versions_doi_and_wrapped_title(fixtures_dir: Path) -> None:
    (paper,) = parse_arxiv_atom(_one(fixtures_dir, "id_list=1111.2011v2.xml"))
    assert isinstance(paper, Paper)
    assert paper.id == "1111.2011" and paper.version == 2
    assert paper.title == (
        "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert paper.doi == "10.1103/physrevb.85.115117"
    assert [v.version for v in paper.versions] == [1, 2]
    assert paper.versions[0].date == datetime(2011, 11, 8, 18, 48, 36, tzinfo=UTC)
    assert paper.versions[1].date == datetime(2012, 4, 2, 12, 38, 54, tzinfo=UTC)
    assert paper.primary_category == "cond-mat.str-el"
    assert "cond-mat.stat-mech" in paper.categories


def test_search_page_numbers(fixtures_dir: Path) -> None:
    page = parse_arxiv_page(_one(fixtures_dir, "q_testing_s10_m10*.xml"), "page2")
    assert (page.total, page.start, page.per_page) == (214881, 10, 10)
    assert len(page.records) == 10 and all(isinstance(r, Paper) for r in page.records)
    assert len({r.id for r in page.records if isinstance(r, Paper)}) == 10


def test_error_feed_raises_with_arxivs_message(fixtures_dir: Path) -> None:
    with pytest.raises(SourceError, match="incorrect id format for abc") as info:
        list(parse_arxiv_atom(_one(fixtures_dir, "id_abc*.xml"), "query?id_list=abc"))
    assert info.value.source == "arxiv_api" and info.value.location == "query?id_list=abc"


def test_empty_result_is_not_an_error(fixtures_dir: Path) -> None:
    page = parse_arxiv_page(_one(fixtures_dir, "id_0000.0000*.xml"))
    assert page.total == 0 and page.records == []


def test_malformed_xml_names_line(fixtures_dir: Path) -> None:
    data = _one(fixtures_dir, "id_1605.08386*.xml")[:700]
    with pytest.raises(SourceError, match=r"malformed XML at line \d+, column \d+"):
        list(parse_arxiv_atom(data, "cut.xml"))


def test_unknown_declared_encoding_is_a_source_error(fixtures_dir: Path) -> None:
    """Found by the mutation test: ``encoding='TF-8'`` used to escape as a LookupError."""
    data = _one(fixtures_dir, "id_1605.08386*.xml")
    data = b"<?xml version='1.0' encoding='TF-8'?>\n" + data.split(b"?>", 1)[-1]
    with pytest.raises(SourceError, match="unknown encoding") as info:
        list(parse_arxiv_atom(data, "odd.xml"))
    assert "odd.xml" in str(info.value)


def test_entity_bomb_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b"<feed>&b;</feed>"
    )
    with pytest.raises(SourceError, match="refused"):
        list(parse_arxiv_atom(bomb))


@pytest.mark.parametrize(
    "pattern",
    ["q_testing_s0_m10*.xml", "id_0808.05394_1707.08567*.xml", "search_query=au_del_maestro.xml"],
)
@given(data=st.data())
@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_feeds_never_crash(fixtures_dir: Path, pattern: str, data: st.DataObject) -> None:
    check_parser(parse_arxiv_atom, data.draw(mutated(_one(fixtures_dir, pattern))))


def _serve_pages(server: ReplayServer, fixtures_dir: Path) -> None:
    server.route("/api/query", Reply(200, _one(fixtures_dir, "q_testing_s0_m10*.xml")), start="0")
    server.route("/api/query", Reply(200, _one(fixtures_dir, "q_testing_s10_m10*.xml")), start="10")


def test_fetch_pages_with_start_and_checkpoints(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    _serve_pages(server, fixtures_dir)
    batches = list(fetch_arxiv(client, settings, query="all:testing", max_results=20, page_size=10))
    assert [b.checkpoint for b in batches] == [
        {"start": 10, "total": 214881},
        {"start": 20, "total": 214881},
    ]
    assert sum(len(b.records) for b in batches) == 20
    assert [r.query["start"] for r in server.requests] == [["0"], ["10"]]
    assert server.requests[0].query["search_query"] == ["all:testing"]
    assert server.requests[0].query["max_results"] == ["10"]


def test_fetch_resumes_after_checkpoint(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    _serve_pages(server, fixtures_dir)
    batches = list(
        fetch_arxiv(
            client,
            settings,
            query="all:testing",
            max_results=10,
            page_size=10,
            checkpoint={"start": 10},
        )
    )
    assert [r.query["start"] for r in server.requests] == [["10"]]
    assert batches[0].checkpoint == {"start": 20, "total": 214881}


def test_fetch_http_400_error_feed(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    server.route("/api/query", Reply(400, _one(fixtures_dir, "id_abc*.xml")))
    with pytest.raises(SourceError, match="incorrect id format for abc") as info:
        list(fetch_arxiv(client, settings, ids=["abc"]))
    assert "id_list=abc" in info.value.location
    assert len(server.requests) == 1  # a 400 is not retried


def test_fetch_empty_result_yields_one_empty_batch(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    server.route("/api/query", Reply(200, _one(fixtures_dir, "id_0000.0000*.xml")))
    batches = list(fetch_arxiv(client, settings, ids=["0000.0000"]))
    assert len(batches) == 1 and batches[0].records == []
    assert batches[0].checkpoint == {"start": 0, "total": 0}


def test_fetch_survives_503_then_200(
    server: ReplayServer,
    client: PoliteClient,
    settings: Settings,
    fixtures_dir: Path,
) -> None:
    server.route(
        "/api/query",
        [
            Reply(503, b"busy", {"Retry-After": "4"}),
            Reply(200, _one(fixtures_dir, "id_1605.08386*.xml")),
        ],
    )
    (batch,) = fetch_arxiv(client, settings, ids=["1605.08386"])
    assert [r.id for r in batch.records if isinstance(r, Paper)] == ["1605.08386"]


@pytest.mark.parametrize(
    "page",
    [
        b"<!DOCTYPE html>\n<html><head><title>arXiv is down for maintenance</title></head>"
        b"<body><p>Back soon<br></p></body></html>",
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- portal -->\n<HTML><HEAD><TITLE>arXiv is down '
        b"for maintenance</TITLE></HEAD></HTML>",
    ],
)
def test_an_html_page_is_named_as_such_with_its_title(page: bytes) -> None:
    with pytest.raises(SourceError, match="got an HTML page, not XML") as info:
        list(parse_arxiv_atom(page, "https://export.arxiv.org/api/query?x"))
    assert "arXiv is down for maintenance" in str(info.value)
    assert "export.arxiv.org" in str(info.value)


def test_fetch_html_error_page_with_200_status_is_a_source_error(
    server: ReplayServer, client: PoliteClient, settings: Settings
) -> None:
    server.route(
        "/api/query",
        Reply(
            200, b"<!doctype html><title>Service Unavailable</title>", {"Content-Type": "text/html"}
        ),
    )
    with pytest.raises(SourceError, match=r"HTML page.*Service Unavailable"):
        list(fetch_arxiv(client, settings, ids=["1605.08386"]))

"""arXiv OAI-PMH: arXiv/arXivRaw/oai_dc records, errors, deleted records, 503 + Retry-After,
resumption tokens, checkpoint resume and badResumptionToken restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.config import Settings
from paperradar.model import Paper, ParseProblem
from paperradar.sources.arxiv_oai import OaiError, deleted_id, fetch_oai, parse_oai_page
from paperradar.sources.http import PoliteClient

from .conftest import SleepLog
from .mutations import check_parser, mutated
from .replay_server import ReplayServer, Reply


def _f(fixtures_dir: Path, rel: str) -> bytes:
    return (fixtures_dir / "arxiv_oai" / rel).read_bytes()


def test_arxivraw_versions_and_tex_authors(fixtures_dir: Path) -> None:
    (p,) = parse_oai_page(_f(fixtures_dir, "fatcat/arXivRaw_GetRecord_1810.09584.xml")).records
    assert isinstance(p, Paper) and p.id == "1810.09584" and p.version == 2
    assert [(v.version, v.size) for v in p.versions] == [(1, "401kb"), (2, "669kb")]
    assert p.authors[-1].name == "Édgar Roldán" and p.extra["submitter"] == "Édgar Roldán"
    assert p.primary_category == "cond-mat.stat-mech" and p.extra["oai_datestamp"] == "2019-01-15"


def test_arxiv_prefix_affiliations_and_token(fixtures_dir: Path) -> None:
    page = parse_oai_page(
        _f(fixtures_dir, "extracted/listrecords_arXiv_503_then_200__1_status200.xml")
    )
    first = page.records[0]
    assert isinstance(first, Paper) and first.id == "1412.8544"
    assert first.authors[0].name == "Sander Uijlen"
    assert first.authors[0].affiliations == ["Radboud Universiteit"]
    assert first.extra["journal_ref"] == "EPTCS 172, 2014, pp. 154-164"
    raw = parse_oai_page(_f(fixtures_dir, "arXivOAIHarvester/ListRecordsResponse.xml"))
    assert raw.resumption_token == "726959|1001" and raw.complete_list_size == 58011
    shetty = raw.records[0]
    assert isinstance(shetty, Paper) and shetty.doi == "10.1103/physrevc.76.024606"
    assert shetty.extra["dois"] == ["10.1103/physrevc.76.024606", "10.1103/physrevc.76.039902"]
    assert [a.name for a in shetty.authors] == ["D.V. Shetty", "S.J. Yennello", "G.A. Souliotis"]


def test_oai_dc_page(fixtures_dir: Path) -> None:
    page = parse_oai_page(_f(fixtures_dir, "atomiklabs/oai_dc_ListRecords_cs_2024-01-31_page2.xml"))
    assert len(page.records) == 153 and all(isinstance(r, Paper) for r in page.records)
    assert page.resumption_token == "6967186|2001" and page.cursor == 1000


def test_errors(fixtures_dir: Path) -> None:
    empty = parse_oai_page(_f(fixtures_dir, "arXivOAIHarvester/ErrorResponseNoRecordsMatch.xml"))
    assert empty.records == [] and empty.resumption_token is None
    with pytest.raises(OaiError) as info:
        parse_oai_page(_f(fixtures_dir, "arXivOAIHarvester/ErrorResponseBadArgument.xml"), "u")
    assert info.value.code == "badArgument" and "illegal argument" in str(info.value)


def test_deleted_record_is_a_marker_problem() -> None:
    data = b"""<?xml version="1.0"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
<responseDate>2024-01-02T00:00:00Z</responseDate><ListRecords>
<record><header status="deleted"><identifier>oai:arXiv.org:0704.0001</identifier>
<datestamp>2024-01-01</datestamp></header></record></ListRecords></OAI-PMH>"""
    (rec,) = parse_oai_page(data, "page").records
    assert isinstance(rec, ParseProblem) and deleted_id(rec) == "0704.0001"


@pytest.mark.parametrize(
    "rel",
    [
        "arXivOAIHarvester/ListRecordsResponse.xml",
        "hepcrawl/arXiv_multi_record_sample_12records.xml",
    ],
)
@given(data=st.data())
@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_pages_never_crash(fixtures_dir: Path, rel: str, data: st.DataObject) -> None:
    check_parser(lambda b: parse_oai_page(b).records, data.draw(mutated(_f(fixtures_dir, rel))))


def test_fetch_503_retry_after_then_tokens_then_done(
    server: ReplayServer,
    client: PoliteClient,
    settings: Settings,
    sleeps: SleepLog,
    fixtures_dir: Path,
) -> None:
    page1 = _f(fixtures_dir, "arXivOAIHarvester/ListRecordsResponse.xml")
    last = _f(fixtures_dir, "extracted/listrecords_arXiv_503_then_200__1_status200.xml")
    busy = _f(fixtures_dir, "extracted/listrecords_arXiv_503_then_200__0_status503.html")
    server.route(
        "/oai",
        [Reply(503, busy, {"Retry-After": "10"}), Reply(200, page1)],
        metadataPrefix="arXivRaw",
    )
    server.route("/oai", Reply(200, last), resumptionToken="726959|1001")
    batches = list(
        fetch_oai(
            client, settings, metadata_prefix="arXivRaw", set_spec="physics", from_date="2014-10-01"
        )
    )
    assert sleeps.calls == [10.0]
    assert [b.checkpoint["resumption_token"] for b in batches if b.checkpoint] == [
        "726959|1001",
        None,
    ]
    assert (
        batches[-1].checkpoint is not None and batches[-1].checkpoint["watermark"] == "2015-01-06"
    )
    q = server.requests[0].query
    assert q["set"] == ["physics"] and q["from"] == ["2014-10-01"] and q["verb"] == ["ListRecords"]
    assert server.requests[2].query == {"verb": ["ListRecords"], "resumptionToken": ["726959|1001"]}


def test_resume_with_token_and_bad_token_restarts_window(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    bad = _f(fixtures_dir, "arXivOAIHarvester/ErrorResponseBadResumptionToken.xml")
    last = _f(fixtures_dir, "extracted/listrecords_arXiv_503_then_200__1_status200.xml")
    server.route("/oai", Reply(200, bad), resumptionToken="expired")
    server.route("/oai", Reply(200, last), metadataPrefix="arXiv")
    cp = {
        "metadata_prefix": "arXiv",
        "set": "cs",
        "from": "2015-01-01",
        "until": None,
        "resumption_token": "expired",
        "watermark": "2015-01-03",
    }
    batches = list(fetch_oai(client, settings, checkpoint=cp))
    assert [r.query.get("from") for r in server.requests] == [None, ["2015-01-01"]]
    assert len(batches) == 1 and len(batches[0].records) == 2


def test_incremental_run_starts_at_watermark(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    server.route(
        "/oai", Reply(200, _f(fixtures_dir, "arXivOAIHarvester/ErrorResponseNoRecordsMatch.xml"))
    )
    (batch,) = fetch_oai(
        client, settings, checkpoint={"resumption_token": None, "watermark": "2024-02-01"}
    )
    assert server.requests[0].query["from"] == ["2024-02-01"] and batch.records == []

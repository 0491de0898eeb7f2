"""Hugging Face daily papers: three schema generations, an empty day, a corrupted archive,
and the day-by-day fetch with checkpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.config import Settings
from paperradar.errors import SourceError
from paperradar.model import Paper
from paperradar.sources.hf_daily import fetch_hf_daily, parse_hf_daily
from paperradar.sources.http import PoliteClient

from .mutations import check_parser, mutated
from .replay_server import ReplayServer, Reply


def _day(fixtures_dir: Path, day: str) -> bytes:
    return (fixtures_dir / f"hf_daily_papers/daily_papers_{day}.json").read_bytes()


def _papers(data: bytes) -> list[Paper]:
    out = [r for r in parse_hf_daily(data)]
    assert all(isinstance(r, Paper) for r in out)
    return [r for r in out if isinstance(r, Paper)]


def test_mid_2025_shape_counts_links_ai_fields(fixtures_dir: Path) -> None:
    papers = _papers(_day(fixtures_dir, "2025-06-25"))
    assert len(papers) == len(json.loads(_day(fixtures_dir, "2025-06-25")))
    p = papers[0]
    assert p.id == "2506.19851" and p.sources == ["hf_daily"]
    assert p.title == "AnimaX: Animating the Inanimate in 3D with Joint Video-Pose Diffusion Models"
    assert p.upvotes == 21 and p.comments == 1 and p.stars == 20
    assert p.links["code"] == "https://github.com/anima-x/anima-x"
    assert p.links["project"] == "https://anima-x.github.io/"
    assert p.extra["submitter"] == "fanhongxing"
    assert p.extra["ai_summary"].startswith("AnimaX creates")
    assert "video diffusion models" in p.extra["ai_keywords"]
    assert p.published == datetime(2025, 6, 24, 17, 59, 58, tzinfo=UTC)  # paper.publishedAt
    assert p.extra["hf_featured_at"] == "2025-06-25T01:12:40.364000+00:00"
    assert [a.name for a in p.authors][:2] == ["Zehuan Huang", "Haoran Feng"]


def test_2024_shape_without_new_fields(fixtures_dir: Path) -> None:
    papers = _papers(_day(fixtures_dir, "2024-05-27"))
    p = papers[0]
    assert p.id == "2405.15738" and p.stars is None and "code" not in p.links
    assert "ai_summary" not in p.extra and p.upvotes is not None


def test_2026_shape_with_organization(fixtures_dir: Path) -> None:
    papers = _papers(_day(fixtures_dir, "2026-08-21"))
    assert papers and all(p.arxiv_id for p in papers)
    assert any("organization" in p.extra for p in papers)


def test_empty_day_is_no_papers() -> None:
    assert list(parse_hf_daily(b"[]")) == []


def test_stringified_archive_is_rejected(fixtures_dir: Path) -> None:
    data = (
        fixtures_dir / "hf_daily_papers/BROKEN_archiver_stringified_2024-12-17.json"
    ).read_bytes()
    with pytest.raises(SourceError, match="Python repr strings") as info:
        list(parse_hf_daily(data, "2024-12-17.json"))
    assert info.value.source == "hf_daily" and info.value.location == "2024-12-17.json"


def test_one_bad_item_is_a_problem_others_kept(fixtures_dir: Path) -> None:
    items = json.loads(_day(fixtures_dir, "2025-06-25"))
    items.insert(1, {"paper": {"id": "not-an-id", "title": "x"}})
    items.insert(2, 42)
    recs = list(parse_hf_daily(json.dumps(items).encode(), "day.json"))
    problems = [r for r in recs if not isinstance(r, Paper)]
    assert [p.location for p in problems] == ["day.json item 1", "day.json item 2"]
    assert sum(isinstance(r, Paper) for r in recs) == len(items) - 2


@pytest.mark.parametrize("day", ["2024-05-27", "2025-06-25", "2026-08-21"])
@given(data=st.data())
@hsettings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_days_never_crash(fixtures_dir: Path, day: str, data: st.DataObject) -> None:
    check_parser(parse_hf_daily, data.draw(mutated(_day(fixtures_dir, day))))


@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "paper",
                        "id",
                        "title",
                        "authors",
                        "upvotes",
                        "name",
                        "ai_keywords",
                        "githubRepo",
                        "publishedAt",
                        "submittedOnDailyBy",
                        "numComments",
                    ]
                ),
                kids,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
@hsettings(max_examples=150, deadline=None)
def test_any_json_shape_never_crashes(doc: object) -> None:
    check_parser(parse_hf_daily, json.dumps(doc).encode())


def test_fetch_range_one_batch_per_day_with_checkpoints(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    server.route(
        "/api/daily_papers", Reply(200, _day(fixtures_dir, "2025-06-25")), date="2025-06-25"
    )
    server.route("/api/daily_papers", Reply(200, b"[]"), date="2025-06-26")
    batches = list(fetch_hf_daily(client, settings, since="2025-06-25", until="2025-06-26"))
    assert [b.checkpoint for b in batches] == [
        {"date": "2025-06-25", "page": None},
        {"date": "2025-06-26", "page": None},
    ]
    assert len(batches[0].records) == 14 and batches[1].records == []
    assert server.requests[0].query["limit"] == ["100"]


def test_fetch_resumes_after_checkpointed_day(
    server: ReplayServer, client: PoliteClient, settings: Settings
) -> None:
    server.route("/api/daily_papers", Reply(200, b"[]"))
    list(
        fetch_hf_daily(
            client,
            settings,
            since="2025-06-25",
            until="2025-06-27",
            checkpoint={"date": "2025-06-25", "page": None},
        )
    )
    assert [r.query["date"] for r in server.requests] == [["2025-06-26"], ["2025-06-27"]]


def test_fetch_broken_body_raises(
    server: ReplayServer, client: PoliteClient, settings: Settings
) -> None:
    server.route("/api/daily_papers", Reply(200, b"<html>oops</html>"))
    with pytest.raises(SourceError, match="not valid JSON") as info:
        list(fetch_hf_daily(client, settings, date="2025-06-25"))
    assert "date=2025-06-25" in info.value.location

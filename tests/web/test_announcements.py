"""Papers from arXiv's announcement feeds say how they were announced: new, cross-list or an
updated version, so a reader of the listing tells today's new work from updates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperradar.engine import make_engine
from paperradar.harvest import file_plan
from paperradar.web import create_app

FEED = "arxiv_rss/laya_rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24.xml"


@pytest.fixture(scope="module")
def rss_client(
    tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path
) -> Iterator[TestClient]:
    eng = make_engine(str(tmp_path_factory.mktemp("rss") / "rss.db"), rate_limit_per_minute=0)
    report = eng.harvest(file_plan("arxiv_rss", fixtures_dir / FEED))
    assert report.new == 4
    with TestClient(create_app(eng)) as c:
        yield c
    eng.close()


def _badge(html: str, paper_id: str) -> str | None:
    card = re.search(
        rf'<article class="card" id="p-{re.escape(paper_id)}".*?</article>', html, re.S
    )
    assert card, paper_id
    m = re.search(r'<span class="announce ([a-z-]+)"[^>]*>([^<]+)</span>', card.group(0))
    return f"{m.group(1)}: {m.group(2).strip()}" if m else None


def test_the_day_listing_marks_new_submissions(rss_client: TestClient) -> None:
    html = rss_client.get("/?day=2026-09-24").text
    assert _badge(html, "2609.26811") == "new: New"
    assert _badge(html, "2609.26820") == "new: New"


@pytest.mark.parametrize(
    ("paper_id", "badge"),
    [("2009.13987", "replace: Updated"), ("2205.06398", "cross: Cross-list")],
)
def test_updates_and_cross_lists_are_marked_wherever_they_show(
    rss_client: TestClient, paper_id: str, badge: str
) -> None:
    html = rss_client.get(f"/search?q=id:{paper_id}").text
    got = _badge(html, paper_id)
    assert got is not None and got.startswith(badge)


def test_papers_from_other_sources_carry_no_badge(client: TestClient) -> None:
    assert 'class="announce' not in client.get("/").text

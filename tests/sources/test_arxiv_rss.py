"""arXiv RSS/Atom announcement feeds and the conditional GET."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.config import Settings
from paperradar.model import Paper
from paperradar.sources.arxiv_rss import fetch_arxiv_rss, parse_arxiv_rss
from paperradar.sources.http import PoliteClient

from .mutations import check_parser, mutated
from .replay_server import ReplayServer, Reply


def _rss(fixtures_dir: Path) -> bytes:
    return next((fixtures_dir / "arxiv_rss").glob("laya_rss_*.xml")).read_bytes()


def _atom(fixtures_dir: Path) -> bytes:
    return next((fixtures_dir / "arxiv_rss").glob("paperforge_atom_*.xml")).read_bytes()


def test_rss_items(fixtures_dir: Path) -> None:
    papers = [r for r in parse_arxiv_rss(_rss(fixtures_dir)) if isinstance(r, Paper)]
    assert [p.extra["announce_type"] for p in papers] == ["new", "new", "cross", "replace"]
    new = papers[0]
    assert new.id == "2609.26811" and new.version == 1 and new.authors[0].name == "Fabien Polly"
    assert new.abstract.startswith("Local learning trains each layer")  # prefix cut off
    assert new.published is not None and new.published.isoformat() == "2026-09-24T04:00:00+00:00"
    assert new.links["abs"] == "https://arxiv.org/abs/2609.26811"
    replaced = papers[3]
    assert replaced.id == "2009.13987" and replaced.version == 3 and replaced.published is None


def test_atom_items_with_doi_and_journal(fixtures_dir: Path) -> None:
    papers = [r for r in parse_arxiv_rss(_atom(fixtures_dir)) if isinstance(r, Paper)]
    assert [p.extra["announce_type"] for p in papers] == ["new", "cross", "replace"]
    assert papers[0].doi == "10.1109/mapr72750.2026.11685822"
    assert papers[0].extra["journal_ref"].startswith("2026 International Conference")
    assert len(papers[0].authors) == 6
    assert papers[1].primary_category == "hep-ph" and "cs.LG" in papers[1].categories


@given(data=st.data())
@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_feeds_never_crash(fixtures_dir: Path, data: st.DataObject) -> None:
    blob = data.draw(st.sampled_from([_rss(fixtures_dir), _atom(fixtures_dir)]))
    check_parser(parse_arxiv_rss, data.draw(mutated(blob)))


def test_conditional_get_keeps_validators_and_304_is_empty(
    server: ReplayServer, client: PoliteClient, settings: Settings, fixtures_dir: Path
) -> None:
    server.route(
        "/rss/cs.LG+stat.ML",
        [
            Reply(
                200,
                _rss(fixtures_dir),
                {"ETag": '"abc"', "Last-Modified": "Thu, 24 Sep 2026 08:58:05 GMT"},
            ),
            Reply(304),
        ],
    )
    (first,) = fetch_arxiv_rss(client, settings, categories=["cs.LG", "stat.ML"])
    assert len(first.records) == 4
    assert first.checkpoint == {"etag": '"abc"', "last_modified": "Thu, 24 Sep 2026 08:58:05 GMT"}
    (second,) = fetch_arxiv_rss(
        client, settings, categories="cs.LG+stat.ML", checkpoint=first.checkpoint
    )
    assert second.records == [] and second.checkpoint is None
    assert server.requests[1].headers["If-None-Match"] == '"abc"'

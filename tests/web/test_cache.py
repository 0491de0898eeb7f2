"""The response cache (short TTL, per process), ETag/conditional GET, outbound click tracking
and the "Save" signal, on a real SQLite engine of its own (these tests write)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_corpus import MON, build_engine, paper

from paperradar.engine import Engine
from paperradar.sources import Batch
from paperradar.web import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def eng(tmp_path: Path) -> Iterator[Engine]:
    e = build_engine(tmp_path / "cache.db", rate_limit_per_minute=0, web_cache_s=10)
    yield e
    e.close()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def client(eng: Engine, clock: Clock) -> Iterator[TestClient]:
    app = create_app(eng)
    app.state.response_cache.clock = clock
    with TestClient(app) as c:
        yield c


def test_pages_are_answered_from_memory_until_the_ttl_then_fresh(
    client: TestClient, eng: Engine, clock: Clock
) -> None:
    first = client.get("/", params={"view": "latest", "sort": "newest"})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=10"
    assert first.headers["etag"].startswith('"')
    assert first.headers["content-security-policy"]  # security headers on cached answers too
    late = paper("2403.09999", "A freshly ingested paper about caches", MON)
    late.first_seen = datetime(2030, 1, 1, tzinfo=UTC)
    eng.ingest([Batch("test", [late])])
    again = client.get("/", params={"view": "latest", "sort": "newest"})
    assert again.text == first.text and "freshly ingested" not in again.text
    clock.now += 10.5  # past the TTL: the page is computed again
    fresh = client.get("/", params={"view": "latest", "sort": "newest"})
    assert "freshly ingested" in fresh.text
    assert fresh.headers["etag"] != first.headers["etag"]


def test_conditional_get_answers_304_without_a_body(client: TestClient) -> None:
    r = client.get("/paper/2403.00001")
    etag = r.headers["etag"]
    again = client.get("/paper/2403.00001", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get("/paper/2403.00001", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200 and other.text == r.text
    api = client.get("/api/v1/search", params={"q": "attention"})
    assert (
        client.get(
            "/api/v1/search",
            params={"q": "attention"},
            headers={"If-None-Match": api.headers["etag"]},
        ).status_code
        == 304
    )


def test_errors_personal_and_write_routes_are_not_cached(client: TestClient) -> None:
    assert client.get("/paper/9999.99999").status_code == 404
    assert "etag" not in client.get("/paper/9999.99999").headers
    assert "etag" not in client.get("/healthz").headers
    assert "etag" not in client.get("/metrics").headers
    assert "etag" not in client.get("/subscriptions/preferences", params={"token": "x"}).headers
    assert (
        client.post("/save", data={"paper": "2403.00001"}, follow_redirects=False).status_code
        == 303
    )


def test_cache_off_passes_everything_through(tmp_path: Path) -> None:
    e = build_engine(tmp_path / "off.db", rate_limit_per_minute=0, web_cache_s=0)
    try:
        with TestClient(create_app(e)) as c:
            r = c.get("/", params={"view": "latest"})
            assert r.status_code == 200 and "etag" not in r.headers
    finally:
        e.close()


def test_outbound_links_are_tracked_and_save_is_a_trending_signal(
    client: TestClient, eng: Engine
) -> None:
    html = client.get("/paper/2403.00001").text
    assert 'href="/go?paper=2403.00001&amp;to=abs"' in html
    assert 'href="https://arxiv.org/abs/' not in html
    go = client.get("/go", params={"paper": "2403.00001", "to": "abs"}, follow_redirects=False)
    assert go.status_code == 302 and go.headers["location"].startswith("https://arxiv.org/abs/")
    saved = client.post("/save", data={"paper": "2403.00001"}, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/paper/2403.00001?saved=true"
    assert "saves count toward trending" in client.get(saved.headers["location"]).text
    counts = eng.storage.event_counts(datetime(2000, 1, 1, tzinfo=UTC))["2403.00001"]
    assert counts == {"click": 1, "save": 1}
    assert client.post("/save", data={"paper": ""}).status_code == 400
    assert client.post("/save", data={"paper": "9999.99999"}).status_code == 404

"""The JSON API: shapes, filters, keyset pages, one error shape, rate limit, CORS."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_corpus import HOSTILE_ID, HOSTILE_TITLE, build_engine

from paperradar.web import create_app


def error_of(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def test_papers_pages_with_keyset_cursors_cover_everything_once(client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/papers", params=params).json()
        assert len(body["papers"]) <= 7
        seen += [p["id"] for p in body["papers"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    total = client.get("/api/v1/stats").json()["papers"]
    assert len(seen) == len(set(seen)) == total


def test_papers_filters_by_category_and_published_day(client: TestClient) -> None:
    body = client.get(
        "/api/v1/papers",
        params={"cat": "math.OC", "published_from": "2024-03-12", "published_to": "2024-03-14"},
    ).json()
    assert [p["title"] for p in body["papers"]] == [
        "Paper 9 on graphs day 2",
        "Paper 6 on graphs day 1",
    ]
    assert all("math.OC" in p["categories"] for p in body["papers"])


def test_papers_sorted_by_upvotes_descend(client: TestClient) -> None:
    papers = client.get("/api/v1/papers", params={"sort": "upvotes", "limit": 20}).json()["papers"]
    votes = [p["upvotes"] or 0 for p in papers]
    assert votes == sorted(votes, reverse=True) and votes[0] == 99


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/papers/hep-th/9901001", "hep-th/9901001"),
        ("/api/v1/papers/2403.00001v2", "2403.00001"),
        ("/api/v1/papers/arXiv:2403.00001", "2403.00001"),
    ],
)
def test_paper_by_any_id_form(client: TestClient, path: str, expected: str) -> None:
    body = client.get(path).json()
    assert body["id"] == expected
    assert body["html_url"] == f"http://testserver/paper/{expected}"
    assert [v["version"] for v in body["versions"]] == [1, 2]


def test_paper_with_title_id_and_colon(client: TestClient) -> None:
    title_id = client.get("/api/v1/search", params={"q": "A paper known only by its title"}).json()[
        "hits"
    ][0]["paper"]["id"]
    assert title_id.startswith("title:")
    assert client.get(f"/api/v1/papers/{title_id}").json()["title"].startswith("A paper known")


def test_unknown_paper_is_404_in_the_error_shape(client: TestClient) -> None:
    r = client.get("/api/v1/papers/2401.99999")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/papers?limit=0", "limit"),
        ("/api/v1/papers?limit=abc", "limit"),
        ("/api/v1/papers?sort=random", "sort"),
        ("/api/v1/papers?published_from=yesterday", "published_from"),
        ("/api/v1/papers?cat=%3Cscript%3E", "cat"),
        ("/api/v1/search?q=x&mode=magic", "mode"),
        ("/api/v1/search", "q"),
        ("/api/v1/trending?window=year", "window"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(client: TestClient, url: str, field: str) -> None:
    r = client.get(url)
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalid_parameter"
    assert err["field"] == field
    assert str(err["message"]).startswith(f"{field}:")


def test_invalid_query_is_400_with_position(client: TestClient) -> None:
    r = client.get("/api/v1/search", params={"q": 'diffusion "unbalanced'})
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalid_query"
    assert err["position"] == 10
    assert err["field"] == "q"


def test_bad_cursor_is_400(client: TestClient) -> None:
    r = client.get("/api/v1/papers", params={"cursor": "not-a-cursor!"})
    assert r.status_code == 400
    assert error_of(r)["code"] == "invalid_query"
    assert error_of(r)["field"] == "cursor"
    r = client.get("/api/v1/search", params={"q": "diffusion", "cursor": "bm90IGpzb24"})
    assert r.status_code == 400 and error_of(r)["field"] == "cursor"


def test_search_hits_say_why_they_matched_and_page(client: TestClient) -> None:
    first = client.get("/api/v1/search", params={"q": "diffusion", "limit": 5}).json()
    assert len(first["hits"]) == 5 and first["next_cursor"]
    assert all(h["matched_by"] == ["keyword"] for h in first["hits"])
    assert all("diffusion" in h["paper"]["title"].lower() for h in first["hits"])
    second = client.get(
        "/api/v1/search", params={"q": "diffusion", "limit": 5, "cursor": first["next_cursor"]}
    ).json()
    ids1 = {h["paper"]["id"] for h in first["hits"]}
    assert ids1.isdisjoint(h["paper"]["id"] for h in second["hits"])


def test_search_by_id_pins_the_paper(client: TestClient) -> None:
    hits = client.get("/api/v1/search", params={"q": "2403.00004"}).json()["hits"]
    assert hits[0]["paper"]["id"] == "2403.00004"
    assert hits[0]["pinned"] is True and hits[0]["score"] is None
    assert hits[0]["matched_by"] == ["id"]


def test_similar_trending_categories_stats_health(client: TestClient) -> None:
    similar = client.get("/api/v1/similar/2403.00001", params={"limit": 3}).json()
    assert 0 < len(similar["hits"]) <= 3
    assert "2403.00001" not in [h["paper"]["id"] for h in similar["hits"]]
    trending = client.get("/api/v1/trending", params={"window": "week"}).json()
    ids = [p["id"] for p in trending["papers"]]
    assert ids[0] == "2501.00001"  # most upvoted of the week; the 2024 papers are too old
    assert not any(i.startswith(("2403.", "hep-th")) for i in ids)
    cats = {c["name"]: c["count"] for c in client.get("/api/v1/categories").json()["categories"]}
    assert cats["math.OC"] == 5 and cats["cs.CV"] == 5 and cats["hep-th"] == 1
    assert client.get("/api/v1/stats").json()["papers"] == 49
    assert client.get("/healthz").json()["status"] == "ok"


def test_hostile_text_is_json_data_never_html(client: TestClient) -> None:
    r = client.get(f"/api/v1/papers/{HOSTILE_ID}")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json()["title"] == " ".join(HOSTILE_TITLE.split())


def test_subscriptions_reject_a_bad_address(client: TestClient) -> None:
    # The whole subscribe flow (with a real SMTP server) is in test_subscriptions.py.
    bad = client.post("/api/v1/subscriptions", json={"email": "nope", "queries": ["x"]})
    assert bad.status_code == 400 and error_of(bad)["field"] == "email"


def test_openapi_and_docs_describe_the_api_without_a_cdn(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/papers",
        "/api/v1/papers/{paper_id}",
        "/api/v1/search",
        "/api/v1/similar/{paper_id}",
        "/api/v1/trending",
        "/api/v1/categories",
        "/api/v1/stats",
    ):
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/v1/search" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    engine = build_engine(tmp_path / "rl.db", rate_limit_per_minute=3)
    with TestClient(create_app(engine)) as c:
        codes = [c.get("/api/v1/stats").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/api/v1/papers")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert error_of(r)["code"] == "rate_limited"
        assert c.get("/healthz").status_code == 200  # health checks are not counted
    engine.close()


def test_cors_is_off_by_default_and_configurable(client: TestClient, tmp_path: Path) -> None:
    origin = {"Origin": "https://example.org"}
    assert "access-control-allow-origin" not in client.get("/api/v1/stats", headers=origin).headers
    engine = build_engine(tmp_path / "cors.db", cors_origins=["https://example.org"])
    with TestClient(create_app(engine)) as c:
        r = c.get("/api/v1/stats", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://example.org"
        other = c.get("/api/v1/stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    engine.close()

"""RSS 2.0 and Atom feeds: valid, stable ids, conditional GET, escaped, discoverable."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import feedparser
import pytest
from fastapi.testclient import TestClient
from web_corpus import HOSTILE_ID

FEEDS = [
    "/feeds/latest.{fmt}",
    "/feeds/category.{fmt}?cat=cs.LG",
    "/feeds/search.{fmt}?q=diffusion",
    "/feeds/search.{fmt}?q=author%3A%22Ada%20Lovelace%22%20cat%3Acs.CV",
    "/feeds/trending.{fmt}?window=month",
]


@pytest.mark.parametrize("url", FEEDS)
@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_feeds_are_valid_with_required_elements(client: TestClient, url: str, fmt: str) -> None:
    r = client.get(url.format(fmt=fmt))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(f"application/{fmt}+xml")
    ET.fromstring(r.content)  # well-formed XML
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if fmt == "rss" else "atom10")
    assert parsed.feed.title.startswith("paperradar")
    assert parsed.feed.link.startswith("http://testserver/")
    if fmt == "rss":
        assert parsed.feed.description
    else:
        assert parsed.feed.id and parsed.feed.updated
    assert parsed.entries
    for entry in parsed.entries:
        assert entry.title and entry.id
        assert entry.link.startswith("http://testserver/paper/")
        assert entry.id.startswith("tag:paperradar.org,2024:paper/")
        assert entry.get("published") or entry.get("updated")


def test_feed_items_are_in_the_expected_set(client: TestClient) -> None:
    parsed = feedparser.parse(client.get("/feeds/category.atom?cat=math.OC").content)
    assert len(parsed.entries) == 5
    assert all("math.OC" in [t.term for t in e.tags] for e in parsed.entries)
    search = feedparser.parse(client.get("/feeds/search.rss?q=diffusion").content)
    assert search.entries
    assert all("diffusion" in (e.title + e.summary).lower() for e in search.entries)


def test_guids_are_stable_and_made_from_the_paper_id(client: TestClient) -> None:
    a = feedparser.parse(client.get("/feeds/latest.rss").content)
    b = feedparser.parse(client.get("/feeds/latest.atom").content)
    ids_rss = {e.id for e in a.entries}
    assert ids_rss == {e.id for e in b.entries}
    assert "tag:paperradar.org,2024:paper/hep-th/9901001" in ids_rss
    again = feedparser.parse(client.get("/feeds/latest.rss").content)
    assert [e.id for e in again.entries] == [e.id for e in a.entries]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_conditional_get_answers_304(client: TestClient, fmt: str) -> None:
    first = client.get(f"/feeds/latest.{fmt}")
    etag = first.headers["etag"]
    again = client.get(f"/feeds/latest.{fmt}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get(f"/feeds/latest.{fmt}", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = client.get(f"/feeds/latest.{fmt}", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_hostile_text_is_escaped_in_feeds(client: TestClient, fmt: str) -> None:
    r = client.get(f"/feeds/search.{fmt}?q=id:{HOSTILE_ID}")
    root = ET.fromstring(r.content)
    assert not [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] in ("script", "iframe")]
    assert b"<script>" not in r.content and b"&lt;script&gt;" in r.content
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo
    entry = parsed.entries[0]
    assert "window.__pwned" in entry.title  # shown as text, not dropped
    assert "\x0b" not in (entry.get("summary") or "")


def test_feed_errors(client: TestClient) -> None:
    assert client.get("/feeds/latest.json").status_code == 404
    assert client.get("/feeds/everything.rss").status_code == 400
    r = client.get("/feeds/search.rss")
    assert r.status_code == 400 and r.json()["error"]["field"] == "q"
    assert client.get("/feeds/category.rss?cat=%3Cb%3E").status_code == 400


ALTERNATES = re.compile(
    r'<link rel="alternate" type="application/(rss|atom)\+xml"[^>]*href="([^"]+)"'
)


@pytest.mark.parametrize(
    "page",
    [
        "/",
        "/?view=week",
        "/search?q=diffusion",
        "/category/cs.LG",
        "/trending",
        "/author/Ada%20Lovelace",
    ],
)
def test_listing_pages_advertise_their_feeds(client: TestClient, page: str) -> None:
    html = client.get(page).text
    found = dict((kind, href.replace("&amp;", "&")) for kind, href in ALTERNATES.findall(html))
    assert set(found) == {"rss", "atom"}, page
    for kind, href in found.items():
        feed = client.get(href)
        assert feed.status_code == 200 and feedparser.parse(feed.content).version.startswith(
            "rss" if kind == "rss" else "atom"
        )

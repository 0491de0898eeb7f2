"""RSS 2.0 and Atom feeds: valid, stable ids, conditional GET, escaped, discoverable."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient
from lxml import etree
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


SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.RelaxNG]:
    """RELAX NG schemas: Atom from RFC 4287 Appendix B, RSS 2.0 from the specification."""
    return {
        "atom": etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng"))),
        "rss": etree.RelaxNG(etree.parse(str(SCHEMAS / "rss2.rng"))),
    }


def _valid(schemas: dict[str, etree.RelaxNG], fmt: str, body: bytes) -> None:
    schema = schemas[fmt]
    doc = etree.fromstring(body)
    assert schema.validate(doc), [f"line {e.line}: {e.message}" for e in schema.error_log]


FEED_URLS = [*FEEDS, f"/feeds/search.{{fmt}}?q=id:{HOSTILE_ID}", "/feeds/search.{fmt}?q=zzzzqqq"]


@pytest.mark.parametrize("url", FEED_URLS)
@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_feeds_validate_against_the_rss_and_atom_schemas(
    client: TestClient, schemas: dict[str, etree.RelaxNG], url: str, fmt: str
) -> None:
    body = client.get(url.format(fmt=fmt)).content
    _valid(schemas, fmt, body)
    if fmt == "atom":
        # RFC 4287 4.1.1 (Schematron): a feed without a feed-level author needs one per entry;
        # at most one alternate link per type and hreflang.
        root = etree.fromstring(body)
        ns = {"a": "http://www.w3.org/2005/Atom"}
        if not root.findall("a:author", ns):
            assert all(e.findall("a:author", ns) for e in root.findall("a:entry", ns))
        for el in [root, *root.findall("a:entry", ns)]:
            alts = [
                (link.get("type"), link.get("hreflang"))
                for link in el.findall("a:link", ns)
                if link.get("rel", "alternate") == "alternate"
            ]
            assert len(alts) == len(set(alts))


def test_the_schemas_reject_broken_feeds(schemas: dict[str, etree.RelaxNG]) -> None:
    """The validators are not vacuous: each known defect is caught."""
    channel = "<title>t</title><link>http://x/</link><description>d</description>"
    rss_bad = [
        f'<rss version="0.91"><channel>{channel}</channel></rss>',
        '<rss version="2.0"><channel><title>t</title><link>http://x/</link></channel></rss>',
        f'<rss version="2.0"><channel>{channel}<item><link>http://x/</link></item></channel></rss>',
        f'<rss version="2.0"><channel>{channel}<item><title>a</title>'
        "<pubDate>2024-01-01</pubDate></item></channel></rss>",
        f'<rss version="2.0"><channel>{channel}<item><title>a</title>'
        '<guid isPermaLink="no">x</guid></item></channel></rss>',
        f'<rss version="2.0"><channel>{channel}<bogus/></channel></rss>',
    ]
    for doc in rss_bad:
        assert not schemas["rss"].validate(etree.fromstring(doc.encode())), doc
    atom = 'xmlns="http://www.w3.org/2005/Atom"'
    atom_bad = [
        f"<feed {atom}><title>t</title><updated>2024-01-01T00:00:00Z</updated></feed>",
        f"<feed {atom}><id>x:y</id><title>t</title><updated>2024-01-01</updated></feed>",
        f"<feed {atom}><id>x:y</id><title>t</title><updated>2024-01-01T00:00:00Z</updated>"
        "<entry><id>x:z</id><updated>2024-01-01T00:00:00Z</updated></entry></feed>",
        f"<feed {atom}><id>x:y</id><title>t</title><updated>2024-01-01T00:00:00Z</updated>"
        "<link/></feed>",
    ]
    for doc in atom_bad:
        assert not schemas["atom"].validate(etree.fromstring(doc.encode())), doc
    ok = f"<feed {atom}><id>x:y</id><title>t</title><updated>2024-01-01T00:00:00Z</updated></feed>"
    assert schemas["atom"].validate(etree.fromstring(ok.encode()))


def test_atom_feeds_use_the_default_namespace(client: TestClient) -> None:
    """Some feed readers only understand unprefixed Atom."""
    body = client.get("/feeds/latest.atom").content
    assert b'<feed xmlns="http://www.w3.org/2005/Atom"' in body and b"<atom:" not in body


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

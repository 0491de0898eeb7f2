"""HTML pages served by the app (TestClient): content, navigation, errors, escaping, size."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from web_corpus import HOSTILE_ID, NEWEST_DAY

MAX_PAGE = 100 * 1024


def titles(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", t)
        for t in re.findall(r'<h[23] class="title"[^>]*><a [^>]+>(.*?)</a>', html)
    ]


def test_home_lists_the_newest_day(client: TestClient) -> None:
    html = client.get("/").text
    today = datetime.now(UTC) - timedelta(hours=3)  # the newest paper's day
    assert f"{today:%A, %d %B %Y}" in html
    assert titles(html) == ["Trending now: retrieval"]


def test_day_navigation_links_the_neighbouring_days(client: TestClient) -> None:
    html = client.get("/", params={"date": NEWEST_DAY}).text
    assert "Monday, 18 March 2024" in html
    shown = titles(html)
    assert len(shown) == 25 and all(t.startswith("Scaling diffusion") for t in shown)
    assert 'class="prev-period" href="/?view=day&amp;sort=trending&amp;date=2024-03-17"' in html
    assert 'class="next-period" href="/?view=day&amp;sort=trending&amp;date=2024-03-19"' in html
    assert 'rel="next" href="/?view=day&amp;sort=trending&amp;date=2024-03-18&amp;cursor=' in html


def test_home_pages_through_a_day_with_the_cursor(client: TestClient) -> None:
    html = client.get("/", params={"date": NEWEST_DAY, "sort": "newest"}).text
    nxt = re.search(r'rel="next" href="([^"]+cursor=[^"]+)"', html)
    assert nxt
    page2 = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert len(titles(page2)) == 5
    assert set(titles(html)).isdisjoint(titles(page2))


def test_sorting_by_upvotes_puts_the_most_upvoted_first(client: TestClient) -> None:
    html = client.get("/", params={"date": NEWEST_DAY, "sort": "upvotes"}).text
    assert titles(html)[0] == "Scaling diffusion transformers part 29"
    newest = client.get("/", params={"date": NEWEST_DAY, "sort": "newest"}).text
    assert titles(newest)[0] == "Scaling diffusion transformers part 29"  # latest minute


def test_empty_weekend_says_why(client: TestClient) -> None:
    html = client.get("/", params={"date": "2024-03-16"}).text
    assert "Saturday, 16 March 2024" in html
    assert "no announcements on weekends" in html
    assert titles(html) == []


def test_future_and_uncollected_days_say_why(client: TestClient) -> None:
    assert "in the future" in client.get("/", params={"date": "2999-01-01"}).text
    html = client.get("/", params={"date": "2024-04-02"}).text  # a Tuesday with no papers
    assert "No papers were announced in this period" in html


def test_week_and_month_views_and_category_filter(client: TestClient) -> None:
    week = client.get("/", params={"date": "2024-03-13", "view": "week", "sort": "newest"}).text
    assert "Week 11, 2024" in week
    assert len(titles(week)) == 16  # 15 + the hostile paper, Mon..Fri
    month = client.get("/", params={"date": "2024-03-13", "view": "month", "cat": "math.OC"}).text
    assert "March 2024" in month
    assert len(titles(month)) == 5
    assert all("graphs" in t for t in titles(month))


def test_demo_corpus_without_dates_still_fills_the_home_page(demo_client: TestClient) -> None:
    html = demo_client.get("/").text
    assert "Latest papers" in html and "carry no publication dates" in html
    assert len(titles(html)) == 25
    assert 'rel="next"' in html


def test_search_highlights_escaped_matches_and_explains_them(client: TestClient) -> None:
    html = client.get("/search", params={"q": "diffusion"}).text
    assert "<mark>diffusion</mark>" in html
    assert "matched by keyword" in html
    assert 'type="application/rss+xml"' in html


def test_search_filters_compose_into_the_query(client: TestClient) -> None:
    html = client.get(
        "/search", params={"q": "graphs", "cat": "math.OC", "year_from": 2024, "year_to": 2024}
    ).text
    assert "graphs cat:math.OC year:2024..2024" in html
    assert len(titles(html)) == 5


def test_invalid_query_is_a_friendly_400_page_with_the_position(client: TestClient) -> None:
    r = client.get("/search", params={"q": "nonsense:field"})
    assert r.status_code == 400
    assert "could not be read" in r.text and "position 0" in r.text
    assert 'class="caret"' in r.text


def test_zero_results_offer_help(client: TestClient) -> None:
    html = client.get("/search", params={"q": "xylophone", "cat": "cs.LG"}).text
    assert "No results" in html and "search without the filters" in html


def test_paper_page_has_metadata_versions_cite_and_canonical(client: TestClient) -> None:
    html = client.get("/paper/2403.00001").text
    assert '<link rel="canonical" href="http://testserver/paper/2403.00001">' in html
    assert "v1" in html and "v2" in html and "Analytical Engine Lab" in html
    assert 'href="/cite/bibtex/2403.00001"' in html
    # Similar papers load after the page (app.js fetches the fragment the page names); once
    # this process has them, the page shows them at once.
    assert "Similar papers" in html and 'data-load="/similar/2403.00001?fragment=true"' in html
    fragment = client.get("/similar/2403.00001", params={"fragment": "true"}).text
    assert len(titles(fragment)) > 0 and "<html" not in fragment
    assert 'href="/paper/2403.00001"' not in fragment
    client.app.state.response_cache.clear()  # else the page is the one answered above
    assert titles(client.get("/paper/2403.00001").text) == titles(fragment)
    assert len(titles(client.get("/similar/2403.00001").text)) > 0  # the page without script
    bib = client.get("/cite/bibtex/2403.00001")
    assert bib.headers["content-disposition"] == 'attachment; filename="2403.00001.bib"'
    assert bib.text.startswith("@article{")
    assert client.get("/cite/ris/2403.00001").text.startswith("TY  - PREP")
    assert client.get("/cite/csl-json/2403.00001").json()[0]["id"] == "2403.00001"


def test_paper_ids_with_slashes_colons_and_versions(client: TestClient) -> None:
    assert "Old style identifiers" in client.get("/paper/hep-th/9901001").text
    assert "Paper 1 on diffusion" in client.get("/paper/2403.00001v2").text
    title_paper = client.get("/search", params={"q": "known only by its title"}).text
    href = re.search(r'href="(/paper/title:[0-9a-f]+)"', title_paper)
    assert href and "known only by its title" in client.get(href.group(1)).text
    r = client.get("/paper/2401.99999")
    assert r.status_code == 404 and "no paper with id" in r.text


def test_author_category_and_trending_pages(client: TestClient) -> None:
    author = client.get("/author/Edward%20Witten").text
    assert titles(author) == ["Old style identifiers still resolve"]
    cat = client.get("/category/math.OC").text
    assert len(titles(cat)) == 5
    trending = client.get("/trending", params={"window": "week"}).text
    assert titles(trending)[0] == "Trending now: retrieval"


def test_subscribe_box_posts_and_rejects_a_bad_address(client: TestClient) -> None:
    # The whole subscribe flow (with a real SMTP server) is in test_subscriptions.py.
    html = client.get("/category/cs.LG").text
    assert 'action="/subscribe"' in html and 'name="cat" value="cs.LG"' in html
    bad = client.post("/subscribe", data={"email": "not an email"})
    assert bad.status_code == 400 and "email" in bad.text


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?date=2024-03-12",
        "/?date=2024-03-12&view=week",
        f"/paper/{HOSTILE_ID}",
        "/search?q=bold",
        f"/search?q=id:{HOSTILE_ID}",
        "/author/Mallory",
        "/category/cs.LG",
    ],
)
def test_hostile_text_is_escaped_in_pages(client: TestClient, url: str) -> None:
    html = client.get(url).text
    assert "<script>window" not in html and "<img src=x" not in html
    assert "<iframe" not in html and "<b onmouseover" not in html
    assert 'href="javascript:' not in html


def test_hostile_paper_is_shown_as_text(client: TestClient) -> None:
    html = client.get(f"/paper/{HOSTILE_ID}").text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&amp;amp;" in html  # a literal "&amp;" in a title stays visible as typed
    assert "\u05e9\u05dc\u05d5\u05dd" in html and 'dir="auto"' in html


def test_security_headers(client: TestClient) -> None:
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?view=month&date=2024-03-12",
        "/search?q=diffusion",
        f"/paper/{HOSTILE_ID}",
        "/trending?window=month",
    ],
)
def test_pages_stay_under_100_kb(client: TestClient, url: str) -> None:
    assert len(client.get(url).content) < MAX_PAGE


def test_static_assets_are_local(client: TestClient) -> None:
    html = client.get("/").text
    assert not re.search(r'(src|href)="(https?:)?//', html.split("<main", 1)[0])
    for asset in ("/static/style.css", "/static/app.js", "/static/theme.js", "/static/icon.svg"):
        assert client.get(asset).status_code == 200


def test_empty_form_fields_mean_no_filter(client: TestClient) -> None:
    r = client.get("/search?q=graphs&cat=&source=&since=&year_from=&year_to=&sort=relevance")
    assert r.status_code == 200 and len(titles(r.text)) == 10
    bad = client.get("/search", params={"q": "graphs", "year_from": "soon"})
    assert bad.status_code == 400 and "year_from" in bad.text

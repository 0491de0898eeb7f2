"""The pages in a real browser (Chromium via Playwright) against a real uvicorn server.

Covers what only a browser shows: keyboard shortcuts, navigation by clicking, the theme toggle,
layout on a phone, and that hostile data is never executed.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from web_corpus import HOSTILE_ID, NEWEST_DAY, build_engine

from paperradar.web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 in a thread, over the test corpus."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    engine = build_engine(
        tmp_path_factory.mktemp("browser") / "b.db", rate_limit_per_minute=0, base_url=base
    )
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield base
    srv.should_exit = True
    thread.join(5)
    engine.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(base_url=server, color_scheme="light")
    p = context.new_page()
    p.set_default_timeout(5000)
    yield p
    context.close()


def card_titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("main .card .title").all_inner_texts()]


def test_listing_keyboard_shortcuts(page: Any) -> None:
    page.goto(f"/?date={NEWEST_DAY}")
    assert page.locator("main .card").count() == 25
    page.keyboard.press("j")
    first = page.locator("main .card").nth(0)
    assert "current" in (first.get_attribute("class") or "")
    assert page.evaluate("document.activeElement.closest('.card') !== null")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert "current" in (page.locator("main .card").nth(1).get_attribute("class") or "")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("j")  # typing in the search box is not a shortcut
    assert page.input_value("#q") == "j"


def test_day_navigation_by_clicking(page: Any) -> None:
    page.goto(f"/?date={NEWEST_DAY}")
    page.click("text=← Previous day")
    page.wait_for_url(re.compile(r"date=2024-03-17"))
    assert "Sunday, 17 March 2024" in page.inner_text("h1")
    assert "weekends" in page.inner_text(".empty")
    page.click("text=← Previous day")
    page.click("text=← Previous day")
    page.wait_for_url(re.compile(r"date=2024-03-15"))
    assert page.locator("main .card").count() == 3
    page.click("text=Next day →")
    page.wait_for_url(re.compile(r"date=2024-03-16"))
    page.click("main >> text=Week")
    page.wait_for_url(re.compile(r"view=week"))
    assert "Week 11, 2024" in page.inner_text("h1")


def test_search_with_filters_and_pagination(page: Any) -> None:
    page.goto("/search")
    page.fill("#fq", "diffusion")
    page.fill("#fcat", "cs.LG")
    page.select_option("#fsort", "date")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"cat=cs.LG"))
    assert "diffusion cat:cs.LG" in page.inner_text(".summary")
    first = card_titles(page)
    assert len(first) == 20
    assert page.locator("main .card mark").count() > 0
    page.click("text=Next page »")
    page.wait_for_url(re.compile(r"cursor="))
    second = card_titles(page)
    assert second and set(first).isdisjoint(second)
    page.click("text=« First page")
    assert card_titles(page) == first


def test_invalid_query_shows_the_position(page: Any) -> None:
    response = page.goto("/search?q=" + "diffusion%20%22open")
    assert response.status == 400
    assert "position 10" in page.inner_text(".error")
    assert page.inner_text(".caret").splitlines()[-1] == " " * 10 + "^"


def test_paper_page_from_a_card(page: Any) -> None:
    page.goto(f"/?date={NEWEST_DAY}&sort=newest")
    title = card_titles(page)[0]
    page.locator("main .card .title a").first.click()
    page.wait_for_url(re.compile(r"/paper/2403\.00129"))
    assert page.inner_text("h1") == title
    assert (
        page.locator("link[rel=canonical]")
        .get_attribute("href", timeout=1000)
        .endswith("/paper/2403.00129")
    )
    page.click("text=BibTeX >> nth=-1")  # the <summary>
    assert page.inner_text("pre.bibtex").startswith("@article{")
    page.locator("aside.similar .card").first.wait_for()  # loaded by app.js after the page
    assert page.locator("aside.similar .card").count() > 0


def _background(page: Any) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_theme_follows_the_system_and_toggles(browser: Any, server: str) -> None:
    light = browser.new_context(base_url=server, color_scheme="light")
    p = light.new_page()
    p.goto("/")
    light_bg = _background(p)
    p.click("#theme-toggle")
    assert p.evaluate("document.documentElement.dataset.theme") == "dark"
    dark_bg = _background(p)
    assert dark_bg != light_bg
    p.reload()
    assert _background(p) == dark_bg  # the choice is remembered
    p.click("#theme-toggle")
    assert p.evaluate("document.documentElement.dataset.theme") is None  # back to the system
    assert _background(p) == light_bg
    light.close()
    dark = browser.new_context(base_url=server, color_scheme="dark")
    p = dark.new_page()
    p.goto("/")
    assert _background(p) == dark_bg
    assert p.get_attribute("#theme-toggle", "aria-label") == "Switch to light theme"
    dark.close()


@pytest.mark.parametrize(
    "url",
    [
        "/?date=2024-03-12",
        f"/paper/{HOSTILE_ID}",
        "/search?q=bold",
        "/author/Mallory",
        "/feeds/latest.rss",
    ],
)
def test_hostile_data_is_never_executed(page: Any, url: str) -> None:
    page.goto(url)
    for details in page.locator("details").all():
        details.evaluate("d => d.open = true")
    for link in page.locator("a[href^='javascript']").all():  # there must be none
        link.click()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    if not url.startswith("/feeds"):
        assert page.locator("main script, main iframe, main img[src=x]").count() == 0
        assert "<script>window.__pwned=1</script>" in page.inner_text("main")


def test_phone_layout_has_no_sideways_scroll(browser: Any, server: str) -> None:
    context = browser.new_context(
        base_url=server, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    p = context.new_page()
    for url in ("/?date=2024-03-12", f"/paper/{HOSTILE_ID}", "/search?q=diffusion"):
        p.goto(url)
        p.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (url, width)
    context.close()

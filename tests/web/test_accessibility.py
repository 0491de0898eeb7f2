"""Accessibility measured in a real browser (Chromium): every text on the main pages meets WCAG
AA contrast (4.5:1, 3:1 for large text) in the light and in the dark theme; landmarks are there
once; every form control has a label; headings do not skip levels; images have alt text."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, browser, server, sync_api  # noqa: F401
from web_corpus import HOSTILE_ID, NEWEST_DAY

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium"),
]

PAGES = [
    f"/?date={NEWEST_DAY}",
    "/search?q=diffusion",
    "/search?q=zzzzqqqq",
    f"/paper/{HOSTILE_ID}",
    "/paper/2403.00001",
    "/trending",
    "/category/cs.LG",
    "/author/Ada%20Lovelace",
]
CONTRAST_PAGES = PAGES[:4]  # the other pages reuse these templates' styles

# For each element with its own visible text: its colour, the first opaque background behind it,
# font size and weight. Colours come back as rgb()/rgba() strings from getComputedStyle.
CONTRAST_JS = r"""
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(',').map(s => parseFloat(s));
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const blend = (fg, bg) => ({r: fg.r * fg.a + bg.r * (1 - fg.a), g: fg.g * fg.a + bg.g * (1 - fg.a),
                              b: fg.b * fg.a + bg.b * (1 - fg.a), a: 1});
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    const root = parse(getComputedStyle(document.documentElement).backgroundColor);
    if (layers.length === 0 || layers[layers.length - 1].a < 1) {
      if (root && root.a > 0) bg = root;
    }
    for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
    return bg;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || seen.has(el)) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || rect.width === 0 || rect.height === 0) continue;
    if (el.closest('[aria-hidden="true"], details:not([open]) > :not(summary)')) continue;
    let fg = parse(style.color);
    const bg = background(el);
    fg = blend(fg, bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    out.push({text: node.textContent.trim().slice(0, 40), tag: el.tagName, cls: el.className,
              ratio: (l1 + 0.05) / (l2 + 0.05), large: size >= 24 || (bold && size >= 18.66)});
  }
  return out;
}
"""


@pytest.fixture(params=["light", "dark"])
def themed(request: pytest.FixtureRequest, browser: Any, server: str) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=server, color_scheme=request.param)
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page
    context.close()


@pytest.mark.parametrize("url", CONTRAST_PAGES)
def test_text_contrast_meets_wcag_aa_in_both_themes(themed: Any, url: str) -> None:
    themed.goto(url)
    for details in themed.locator("details").all()[:3]:  # an opened abstract is text too
        details.evaluate("d => d.open = true")
    texts = themed.evaluate(CONTRAST_JS)
    assert texts
    low = [
        f"{t['tag']}.{t['cls']} {t['text']!r}: {t['ratio']:.2f}"
        for t in texts
        if t["ratio"] < (3.0 if t["large"] else 4.5)
    ]
    assert not low, low


@pytest.fixture(scope="module")
def light(browser: Any, server: str) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=server, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page
    context.close()


@pytest.mark.parametrize("url", PAGES)
def test_landmarks_labels_headings_and_alt_text(light: Any, url: str) -> None:
    light.goto(url)
    info = light.evaluate(
        """() => ({
      main: document.querySelectorAll('main').length,
      banner: document.querySelectorAll('body > header, [role=banner]').length,
      navs: [...document.querySelectorAll('nav')].map(n => n.getAttribute('aria-label') || n.getAttribute('aria-labelledby')),
      lang: document.documentElement.lang,
      title: document.title,
      unlabeled: [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !el.getAttribute('aria-labelledby'))
        .map(el => el.outerHTML.slice(0, 80)),
      headings: [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => +h.tagName[1]),
      noAlt: [...document.querySelectorAll('img:not([alt])')].map(i => i.outerHTML.slice(0, 80)),
      unnamedButtons: [...document.querySelectorAll('button, a[href]')]
        .filter(b => !(b.innerText.trim() || b.getAttribute('aria-label') || b.getAttribute('title')))
        .map(b => b.outerHTML.slice(0, 80)),
    })"""
    )
    assert info["main"] == 1 and info["banner"] == 1
    assert all(info["navs"]), "every <nav> needs a label to tell it apart"
    assert info["lang"] and info["title"]
    assert info["unlabeled"] == []
    assert info["noAlt"] == [] and info["unnamedButtons"] == []
    levels = info["headings"]
    assert levels and levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels

"""Regenerate the screenshots of the main pages (home, search, paper; light and dark).

    PYTHONPATH=src python docs/screenshots/make_screenshots.py

Builds the demo corpus in a temporary database, serves it with uvicorn on 127.0.0.1 and
photographs the pages with Chromium (/usr/bin/chromium) through Playwright.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from paperradar.engine import make_engine
from paperradar.web import create_app

OUT = Path(__file__).resolve().parent
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(
        str(Path(tempfile.mkdtemp()) / "demo.db"), base_url=base, rate_limit_per_minute=0
    )
    engine.ingest_demo()
    first = engine.search("diffusion language model", limit=1).hits[0].paper.id
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    pages = {
        "home": "/",
        "search": "/search?q=diffusion+language+model",
        "paper": f"/paper/{first}",
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for scheme in ("light", "dark"):
            ctx = browser.new_context(
                viewport={"width": 1280, "height": 900}, color_scheme=scheme, base_url=base
            )
            page = ctx.new_page()
            for name, url in pages.items():
                page.goto(url)
                if name != "paper":
                    page.locator("main .card details").first.evaluate("d => d.open = true")
                else:  # similar papers load after the page
                    page.locator("aside.similar .card").first.wait_for()
                page.screenshot(path=str(OUT / f"{name}-{scheme}.png"))
            ctx.close()
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, base_url=base
        )
        page = phone.new_page()
        page.goto(pages["search"])
        page.screenshot(path=str(OUT / "search-phone.png"))
        browser.close()
    server.should_exit = True
    engine.close()


if __name__ == "__main__":
    main()

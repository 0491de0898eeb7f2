"""Harvest throughput is bounded by the politeness delay, not by paperradar: an OAI-PMH harvest
of N resumption-token pages against a local server, at several per-host delays.

    PYTHONPATH=src python benchmarks/harvest_politeness.py [--pages 20] [--delays 0 0.25 0.5 1]

Each page is the fixture's real ListRecords page (arXivRaw, 6 records) with fresh ids, served by
a thread on 127.0.0.1. For each delay it prints wall time, the floor (pages - 1) x delay that the
rate limit imposes, the time left over (parsing, merging, storing: what paperradar itself costs)
and records/s. arXiv asks for one request per 3 s: at 1,000 records per real OAI page that is at
most ~330 records/s whatever the machine, and the "overhead" column shows how little of each
3 s interval our own work takes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from paperradar.config import Settings
from paperradar.engine import make_engine
from paperradar.harvest import oai_plan

_REL = "fixtures/arxiv_oai/arXivOAIHarvester/ListRecordsResponse.xml"
_SHARED = [
    *([Path(os.environ["PAPERRADAR_SHARED_DIR"])] if "PAPERRADAR_SHARED_DIR" in os.environ else []),
    *(parent / "shared" for parent in Path(__file__).resolve().parents),
]
FIXTURE = next((d / _REL for d in _SHARED if (d / _REL).is_file()), _SHARED[-1] / _REL)
_ID = re.compile(rb"(0704\.)(\d{4})")
_TOKEN = re.compile(rb"<resumptionToken[^>]*>[^<]*</resumptionToken>")


def page(template: bytes, k: int, pages: int) -> bytes:
    """Page ``k`` of ``pages``: ids moved to month 15xx-k so every page holds new papers."""
    body = _ID.sub(
        lambda m: b"%02d%02d." % (15 + k // 12, k % 12 + 1) + b"0" + m.group(2), template
    )
    token = f"page{k + 1}" if k + 1 < pages else ""
    return _TOKEN.sub(f"<resumptionToken>{token}</resumptionToken>".encode(), body)


def serve(pages: list[bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            q = parse_qs(urlsplit(self.path).query)
            token = q.get("resumptionToken", ["page0"])[0]
            body = pages[int(token.removeprefix("page"))]
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--delays", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    args = ap.parse_args()
    template = FIXTURE.read_bytes()
    httpd = serve([page(template, k, args.pages) for k in range(args.pages)])
    url = f"http://127.0.0.1:{httpd.server_address[1]}/oai"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {sys.version.split()[0]}")
    print(
        f"{'delay s':>8}{'pages':>7}{'records':>9}{'wall s':>8}{'floor s':>9}"
        f"{'overhead s':>11}{'per page ms':>12}{'records/s':>11}"
    )
    for delay in args.delays:
        settings = Settings(oai_url=url, request_delay_s=delay, max_retries=1)
        with tempfile.TemporaryDirectory() as tmp, make_engine(f"{tmp}/h.db") as engine:
            plan = oai_plan(
                settings, set_spec="physics", from_date=None, until=None, metadata_prefix="arXivRaw"
            )
            t = time.perf_counter()
            report = engine.harvest(plan)
            wall = time.perf_counter() - t
            stored = engine.stats()["papers"]
        floor = (args.pages - 1) * delay
        extra = wall - floor
        print(
            f"{delay:>8.2f}{args.pages:>7}{stored:>9}{wall:>8.2f}{floor:>9.2f}{extra:>11.2f}"
            f"{extra / args.pages * 1000:>12.1f}{report.new / wall:>11.0f}"
        )
    httpd.shutdown()


if __name__ == "__main__":
    main()

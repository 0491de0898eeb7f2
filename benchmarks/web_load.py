"""Web load benchmark: requests/s and latency of listing, paper and search pages.

    PYTHONPATH=src python benchmarks/web_load.py [--papers 100000] [--seconds 60] [--concurrency 16]
        [--workers 1] [--no-cache] [--client wrk|httpx]

Builds (or reuses) a database of N synthetic papers through ``Engine.ingest``, starts
``paperradar serve [--workers N]`` in a subprocess on 127.0.0.1 and drives it for ``--seconds``
per scenario with ``--concurrency`` open connections. The load generator runs on the same
machine: with ``wrk`` installed (Debian package ``wrk``; compiled, about a tenth of the CPU of a
Python client) it is the default, else a bounded async httpx loop. Each scenario draws its URLs
at random from a list (120 days x 3 sorts of listings, every paper page, 1-3 word searches over
3,000 words), so most paper pages and searches miss the server's response cache; ``--no-cache``
turns that cache off to measure the uncached path alone. Prints requests/s, p50/p99 and errors
per scenario, the server's CPU time per request (what the server would sustain on an idle
machine: about 2,000 / that many ms per second on 2 cores), the machine and its load average. Targets: listing and paper >= 500 req/s, search
>= 150 req/s, p99 <= 150 ms, no errors on 2 cores. The per-client rate limit is set high (not
off) so its cost is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from host import describe_host

from paperradar.engine import make_engine
from paperradar.model import Author, Paper
from paperradar.sources import Batch

WORDS = [
    "diffusion",
    "transformer",
    "graph",
    "neural",
    "network",
    "attention",
    "retrieval",
    "language",
    "model",
    "vision",
    "reinforcement",
    "learning",
    "policy",
    "optimization",
    "sparse",
    "dense",
    "contrastive",
    "self-supervised",
    "benchmark",
    "dataset",
    "robust",
    "adversarial",
    "federated",
    "privacy",
    "quantum",
    "kernel",
    "bayesian",
    "inference",
    "causal",
    "representation",
    "segmentation",
    "detection",
    "generation",
    "alignment",
    "reasoning",
    "agent",
    "memory",
    "compression",
    "quantization",
    "distillation",
    "scaling",
    "efficient",
    "sampling",
    "flow",
    "matching",
    "energy",
    "protein",
    "molecule",
    "physics",
    "simulation",
    "control",
    "robot",
    "planning",
    "speech",
    "audio",
    "video",
    "3d",
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "ta",
    "vi",
    "so",
    "pe",
    "de",
    "gra",
    "tion",
    "ment",
    "lar",
    "ic",
    "al",
    "ous",
    "ing",
    "er",
    "ist",
]
# A long-tailed vocabulary (Zipf-like draws) so keyword search sees realistic selectivity.
_vocab_rng = random.Random(7)
VOCAB = WORDS + [
    "".join(_vocab_rng.choice(SYLLABLES) for _ in range(_vocab_rng.randint(2, 4)))
    for _ in range(30000)
]
ZIPF_CUM = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(VOCAB))))
CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "cs.RO", "math.OC", "q-bio.NC")
FIRST_DAY = datetime(2024, 1, 1, 12, tzinfo=UTC)
DAYS = 120


def arxiv_id(i: int) -> str:
    """Paper ``i``'s arXiv id (its stored id): 5-digit sequence numbers per month."""
    return f"24{1 + i // 90000:02d}.{1 + i % 90000:05d}"


def synthetic_paper(i: int, rng: random.Random) -> Paper:
    arxiv = arxiv_id(i)
    title = " ".join(rng.choices(VOCAB, cum_weights=ZIPF_CUM, k=rng.randint(5, 11))).capitalize()
    abstract = " ".join(rng.choices(VOCAB, cum_weights=ZIPF_CUM, k=rng.randint(80, 160))) + "."
    cats = rng.sample(CATEGORIES, rng.randint(1, 3))
    published = FIRST_DAY + timedelta(days=rng.randrange(DAYS), minutes=rng.randrange(600))
    return Paper.from_ids(
        ids=[arxiv],
        title=f"{title} {i}",
        source="bench",
        abstract=abstract,
        authors=[Author(f"Author {rng.randrange(20000)}") for _ in range(rng.randint(1, 6))],
        categories=cats,
        primary_category=cats[0],
        published=published,
        upvotes=rng.choice([None, rng.randrange(200)]),
    )


def build_db(path: Path, n: int) -> list[str]:
    """The ids of the papers; ingests them first when the database is new."""
    rng = random.Random(42)
    papers = (synthetic_paper(i, rng) for i in range(n))
    ids = []
    if path.exists():
        return [arxiv_id(i) for i in range(n)]
    started = time.perf_counter()
    with make_engine(str(path)) as engine:
        batch: list[Paper] = []
        for p in papers:
            batch.append(p)
            ids.append(p.id)
            if len(batch) == 5000:
                engine.ingest([Batch("bench", list(batch))])
                batch.clear()
        if batch:
            engine.ingest([Batch("bench", batch)])
    print(f"ingested {n:,} papers in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def drive(
    base: str, make_url: Callable[[random.Random], str], seconds: float, concurrency: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:

        async def worker(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                url = make_url(rng)
                t0 = time.perf_counter()
                try:
                    r = await client.get(url, headers={"Accept-Encoding": "identity"})
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors


WRK_SCRIPT = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(%d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {["Accept-Encoding"] = "identity"})
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def drive_wrk(
    base: str, paths: list[str], seconds: float, concurrency: int
) -> tuple[float, float, float, int, int]:
    """(requests/s, p50 ms, p99 ms, requests, errors) from one wrk run over ``paths``."""
    with tempfile.TemporaryDirectory(prefix="paperradar-wrk-") as tmp:
        listing = Path(tmp, "paths.txt")
        listing.write_text("\n".join(paths) + "\n")
        script = Path(tmp, "paths.lua")
        script.write_text(WRK_SCRIPT % (listing, random.randrange(1 << 30)))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{seconds:.0f}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return rate, p50, p99, total, errors


def drive_httpx(
    base: str, paths: list[str], seconds: float, concurrency: int
) -> tuple[float, float, float, int, int]:
    lat, errors = asyncio.run(drive(base, lambda r: r.choice(paths), seconds, concurrency))
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return len(lat) / seconds, statistics.median(lat) * 1000, p99 * 1000, len(lat), errors


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its child processes (``--workers``) so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1, help="serve --workers N")
    ap.add_argument("--no-cache", action="store_true", help="PAPERRADAR_WEB_CACHE_S=0")
    ap.add_argument("--client", choices=("wrk", "httpx"), default=None)
    ap.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    ap.add_argument("--db", type=Path, default=None, help="reuse/keep the database here")
    args = ap.parse_args()
    client = args.client or ("wrk" if shutil.which("wrk") else "httpx")
    db = args.db or Path(f"/tmp/paperradar-web-bench-{args.papers}.db")
    ids = build_db(db, args.papers)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PAPERRADAR_RATE_LIMIT_PER_MINUTE": "100000000",
        "PAPERRADAR_BASE_URL": base,
    }
    if args.no_cache:
        env["PAPERRADAR_WEB_CACHE_S"] = "0"
    server = subprocess.Popen(
        # `paperradar serve`, run from this interpreter (cli.py has no __main__ guard).
        [
            sys.executable,
            "-c",
            "from paperradar.cli import main; main()",
            "--db",
            str(db),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        rng = random.Random(5)
        days = [(FIRST_DAY + timedelta(days=d)).date().isoformat() for d in range(DAYS)]
        words = VOCAB[:3000]
        scenarios: dict[str, list[str]] = {
            "listing": [
                f"/?date={d}&sort={s}" for d in days for s in ("trending", "newest", "upvotes")
            ],
            "paper": [f"/paper/{i}" for i in ids],
            "search": [
                "/search?q=" + "+".join(rng.sample(words, rng.randint(1, 3))) for _ in range(20000)
            ],
            "api search": [
                "/api/v1/search?q=" + "+".join(rng.sample(words, 2)) for _ in range(20000)
            ],
        }
        if args.only:
            scenarios = {k: v for k, v in scenarios.items() if k in args.only.split(",")}
        run = drive_wrk if client == "wrk" else drive_httpx
        print(f"machine: {describe_host()}")
        print(
            f"{args.papers:,} papers; serve --workers {args.workers}; response cache "
            f"{'off' if args.no_cache else 'on'}; load generator {client} on the same machine, "
            f"{args.concurrency} connections; {args.seconds:.0f} s per scenario"
        )
        print(
            f"{'scenario':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
            f" {'cpu ms/req':>10}  load avg"
        )
        for name, paths in scenarios.items():
            run(base, paths, 2.0, args.concurrency)  # warm up
            cpu0 = server_cpu_s(server.pid)
            rate, p50, p99, total, errors = run(base, paths, args.seconds, args.concurrency)
            cpu_ms = (server_cpu_s(server.pid) - cpu0) * 1000 / max(1, total)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"{name:<12} {total:>9,} {rate:>8.0f} {p50:>8.1f} {p99:>8.1f} {errors:>7}"
                f" {cpu_ms:>10.2f}  {load}",
                flush=True,
            )
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main()

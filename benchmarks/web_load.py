"""Web load benchmark: requests/s and latency of listing, paper and search pages.

    PYTHONPATH=src python benchmarks/web_load.py [--papers 100000] [--seconds 15] [--concurrency 16]

Builds (or reuses) a database of N synthetic papers through ``Engine.ingest``, starts
``paperradar serve`` in a subprocess on 127.0.0.1 and drives it with a bounded async httpx loop
(``--concurrency`` workers, ``--seconds`` per scenario). Prints requests/s, p50/p99 and errors per
scenario, and the machine. Targets: listing and paper >= 500 req/s, search >= 150 req/s,
p99 <= 150 ms on 2 cores. The per-client rate limit is set high (not off) so its cost is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

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


def synthetic_paper(i: int, rng: random.Random) -> Paper:
    month = 1 + i // 90000  # 5-digit sequence numbers per month
    arxiv = f"24{month:02d}.{1 + i % 90000:05d}"
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
        rng2 = random.Random(42)
        return [synthetic_paper(i, rng2).id for i in range(n)]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--db", type=Path, default=None, help="reuse/keep the database here")
    args = ap.parse_args()
    db = args.db or Path(f"/tmp/paperradar-web-bench-{args.papers}.db")
    ids = build_db(db, args.papers)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PAPERRADAR_RATE_LIMIT_PER_MINUTE": "100000000",
        "PAPERRADAR_BASE_URL": base,
    }
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
        ],
        env=env,
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        days = [(FIRST_DAY + timedelta(days=d)).date().isoformat() for d in range(DAYS)]
        sorts = ("trending", "newest", "upvotes")
        scenarios: dict[str, Callable[[random.Random], str]] = {
            "listing": lambda r: f"/?date={r.choice(days)}&sort={r.choice(sorts)}",
            "paper": lambda r: f"/paper/{r.choice(ids)}",
            "search": lambda r: "/search?q=" + "+".join(r.sample(VOCAB[:3000], r.randint(1, 3))),
            "api search": lambda r: "/api/v1/search?q=" + "+".join(r.sample(VOCAB[:3000], 2)),
        }
        print(
            f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}; {args.papers:,} papers; "
            f"{args.concurrency} concurrent clients; {args.seconds:.0f} s per scenario"
        )
        print(
            f"{'scenario':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        )
        for name, make_url in scenarios.items():
            asyncio.run(drive(base, make_url, 1.0, args.concurrency))  # warm up
            lat, errors = asyncio.run(drive(base, make_url, args.seconds, args.concurrency))
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(
                f"{name:<12} {len(lat):>9,} {len(lat) / args.seconds:>8.0f} "
                f"{statistics.median(lat) * 1000:>8.1f} {p99 * 1000:>8.1f} {errors:>7}"
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

"""Keyword search latency on SQLite at N papers, and how fast the keyword index is built.

    python benchmarks/keyword_scale.py --corpus /tmp/corpus-1m.jsonl --keep /tmp/kw-1m.db

Loads the corpus (``benchmarks/make_corpus.py``) straight into the papers table, without the
ingest path (its rate is ``ingest_speed.py``'s figure), so that a million papers fit in a few
minutes; then opens the database as a first search after an upgrade would: the keyword index is
built from ``papers`` (timed: papers/s), and ``Engine.search`` runs the benchmark queries
(``host.KEYWORD_QUERIES`` plus the operators of ``scale.py``) in keyword mode, by relevance and
(a third as many) newest first. With ``--keep`` an
existing database is reused (its index too, unless ``--rebuild``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from host import describe_host
from scale import QUERIES, percentiles

from paperradar.engine import make_engine
from paperradar.model import Author, Paper
from paperradar.storage.schema import papers
from paperradar.storage.sql import paper_to_row


def load(url: str, corpus: Path) -> int:
    eng = make_engine(url)
    engine = eng.storage.engine  # type: ignore[attr-defined]
    now = datetime.now(UTC).replace(tzinfo=None)
    n = 0
    with corpus.open() as fh:
        while True:
            rows = []
            for line in fh:
                d = json.loads(line)
                published = d.get("published")
                p = Paper(
                    id=d["id"],
                    title=d["title"],
                    abstract=d.get("abstract") or "",
                    authors=[Author(a["name"]) for a in d.get("authors") or []],
                    arxiv_id=None,
                    categories=d.get("categories") or [],
                    primary_category=d.get("primary_category"),
                    published=datetime.fromisoformat(published) if published else None,
                    sources=d.get("sources") or [],
                )
                rows.append(paper_to_row(p, now))
                if len(rows) == 20_000:
                    break
            if not rows:
                break
            with engine.begin() as conn:
                conn.execute(sa.insert(papers), rows)
            n += len(rows)
    eng.close()
    return n


Timed = tuple[dict[str, float], dict[str, float], dict[str, float]]


def timed_cpu(
    fn: Callable[[], Any], n: int, per_call: list[tuple[float, float, float]] | None = None
) -> Timed:
    """Percentiles over ``n`` calls, in ms, of the wall time, this thread's CPU time and this
    process's CPU time. On a shared machine the wall time includes waiting for a core; the CPU
    times do not. A search split in two halves runs one on this thread and one on another:
    this thread's CPU time is then what it would take with a second core idle (the halves are
    about equal), the process's what it costs in all."""
    wall, own, cpu = [], [], []
    for _ in range(n):
        t, o, c = time.perf_counter(), time.thread_time(), time.process_time()
        fn()
        cpu.append((time.process_time() - c) * 1000)
        own.append((time.thread_time() - o) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
        if per_call is not None:
            per_call.append((wall[-1], own[-1], cpu[-1]))
    return percentiles(wall), percentiles(own), percentiles(cpu)


def rss_mib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--keep", type=Path, help="the database file (reused when it exists)")
    ap.add_argument("--rebuild", action="store_true", help="build the keyword index again")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument(
        "--split",
        choices=["auto", "always", "never"],
        default="auto",
        help="searches of common words as two halves on two threads: when a core is idle "
        "(auto), however busy the machine is (always: their CPU cost), or never",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="paperradar-kw-") as tmp:
        db = args.keep or Path(tmp) / "kw.db"
        url = f"sqlite:///{db}"
        if not db.exists():
            t = time.perf_counter()
            n = load(url, args.corpus)
            print(f"loaded {n:,} papers into the papers table in {time.perf_counter() - t:.0f} s")
        folder = db.with_name(db.name + ".keywords")
        eng = make_engine(url)
        t = time.perf_counter()
        cpu = time.process_time()
        if args.rebuild or not folder.exists():
            n = eng.storage.keyword_index.rebuild()  # type: ignore[attr-defined]
            wall = time.perf_counter() - t
            cpu = time.process_time() - cpu
            print(
                f"keyword index built: {n:,} papers in {wall:.0f} s = {n / wall:,.0f} papers/s "
                f"(process CPU {cpu:.0f} s = {n / cpu:,.0f} papers per CPU-second)"
            )
        index = eng.storage.keyword_index  # type: ignore[attr-defined]
        if args.split == "always":
            index.split_below_running = 1 << 30
        elif args.split == "never":
            index.split_min_docs = 1 << 62
        eng.search("warm up", mode="keyword")
        rng = random.Random(1)
        for q in QUERIES:
            eng.search(q, mode="keyword", limit=20)
        plain, plain_own, plain_cpu = timed_cpu(
            lambda: eng.search(rng.choice(QUERIES[:14]), mode="keyword"), args.queries
        )
        asked: list[str] = []
        by_call: list[tuple[float, float, float]] = []

        def one() -> None:
            asked.append(rng.choice(QUERIES))
            eng.search(asked[-1], mode="keyword")

        every, every_own, every_cpu = timed_cpu(one, args.queries, by_call)
        newest, _, newest_cpu = timed_cpu(
            lambda: eng.search(rng.choice(QUERIES[:14]), mode="keyword", sort="date"),
            args.queries // 3,
        )
        papers_n = eng.stats()["papers"]
        split = getattr(index, "split_searches", None), getattr(index, "split_declined", None)
        rss = rss_mib()
        eng.close()
    print(f"machine: {describe_host()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{papers_n:,} papers; keyword search (Engine.search, limit 20):")
    print(f"  host.KEYWORD_QUERIES       : {plain}")
    print(f"  + operators (scale.QUERIES): {every}")
    print("  the same queries' CPU time on this thread (with a second core idle; ms):")
    print(f"  host.KEYWORD_QUERIES       : {plain_own}")
    print(f"  + operators (scale.QUERIES): {every_own}")
    print("  the same queries' CPU time in this process (every thread: the cost; ms):")
    print(f"  host.KEYWORD_QUERIES       : {plain_cpu}")
    print(f"  + operators (scale.QUERIES): {every_cpu}")
    print(f"  sort=date, every match newest first (host.KEYWORD_QUERIES): {newest}")
    print(f"    its CPU time: {newest_cpu}")
    print(f"  searches run as two halves: {split[0]}, not split as every core was busy: {split[1]}")
    print("  median ms per query, wall / this thread's CPU / the process's CPU (+ operators run):")
    for q in QUERIES:
        calls = [c for a, c in zip(asked, by_call, strict=True) if a == q]
        if calls:
            w, o, c = (sorted(x)[len(calls) // 2] for x in zip(*calls, strict=True))
            print(f"    {q!r:42} {w:6.1f} / {o:6.1f} / {c:6.1f}  ({len(calls)} runs)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"resident memory after the queries {rss} MiB, peak {peak} MiB")


if __name__ == "__main__":
    main()

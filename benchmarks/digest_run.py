"""Digest run time: compose and deliver one digest to each of N subscribers with varied interests
over a P-paper SQLite database, through SMTP to a local aiosmtpd (in its own process).

    python benchmarks/digest_run.py                       # 10,000 subscribers, 100,000 papers
    python benchmarks/digest_run.py --grid                # growth with subscribers and papers
    python benchmarks/digest_run.py --subscribers 2000 --papers 20000

The corpus comes from make_corpus.py and goes in through ``paperradar ingest jsonl``'s code
path (Engine.ingest_jsonl). Interests: 40 % queries (one to three, from a pool of 300 built from
the corpus vocabulary), 25 % categories, 10 % authors, 10 % followed papers, 15 % just trending.
Prints a table and the machine. Needs aiosmtpd (the test extra).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from host import describe_host, make_corpus_file

from paperradar.engine import Engine, make_engine
from paperradar.storage.base import Interests, Subscription

HERE = Path(__file__).resolve().parent

SERVER = r"""
import asyncio, sys
from aiosmtpd.controller import Controller
count = 0
class H:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        if count % 1000 == 0:
            print(count, flush=True)
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"""

CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "math.OC", "cs.RO", "cs.IR"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_db(papers: int, folder: Path) -> Path:
    corpus = folder / f"corpus-{papers}.jsonl"
    db = folder / f"papers-{papers}.db"
    if not db.exists():
        make_corpus_file(papers, corpus)
        started = time.perf_counter()
        eng = make_engine(str(db), search_mode="keyword")
        eng.ingest_jsonl(corpus)
        eng.close()
        print(
            f"ingested {papers:,} papers in {time.perf_counter() - started:.1f} s", file=sys.stderr
        )
    return db


def vocabulary(eng: Engine, n: int = 300) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(7)
    papers, _ = eng.papers(limit=2000)
    words = [w.lower() for p in papers for w in p.title.split() if len(w) > 5 and w.isalpha()]
    queries = [" ".join(rng.sample(words, rng.randint(1, 2))) for _ in range(n)]
    authors = sorted({a for p in papers for a in p.author_names})[:200]
    return queries, authors, [p.id for p in papers]


def add_subscribers(eng: Engine, n: int) -> None:
    rng = random.Random(11)
    queries, authors, ids = vocabulary(eng)
    now = datetime.now(UTC)
    for i in range(n):
        r = rng.random()
        it = Interests()
        if r < 0.40:
            it.queries = rng.sample(queries, rng.randint(1, 3))
        elif r < 0.65:
            it.categories = rng.sample(CATEGORIES, rng.randint(1, 2))
        elif r < 0.75:
            it.authors = rng.sample(authors, 1)
        elif r < 0.85:
            it.follow = rng.sample(ids[:100], 2)  # 50 or so distinct profiles
        else:
            it.trending = True
        eng.storage.save_subscription(
            Subscription(
                0,
                f"reader{i}@bench.example",
                status="active",
                interests=it,
                max_items=rng.choice([10, 20, 30]),
                confirmed=now,
            )
        )


def one_run(base_db: Path, papers: int, subscribers: int, folder: Path) -> dict[str, object]:
    db = folder / f"run-{papers}-{subscribers}.db"
    shutil.copy(base_db, db)
    # The keyword index goes with the database: without it the run would first rebuild it
    # (a minute at 100 k papers), which is ingest's cost, not the digests'.
    index = base_db.with_name(base_db.name + ".keywords")
    shutil.rmtree(db.with_name(db.name + ".keywords"), ignore_errors=True)
    if index.exists():
        shutil.copytree(index, db.with_name(db.name + ".keywords"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    try:
        eng = make_engine(
            str(db),
            data_dir=folder / "data",
            smtp_url=f"smtp://127.0.0.1:{port}",
            smtp_rate_per_s=0.0,
            search_mode="keyword",
            base_url="http://paperradar.bench",
        )
        started = time.perf_counter()
        add_subscribers(eng, subscribers)
        setup_s = time.perf_counter() - started
        at = datetime.now(UTC).replace(hour=23, minute=0)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        report = eng.run_digests(at=at)
        run_s = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        eng.close()
    finally:
        assert server.stdin is not None
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server.stdin.close()
        server.wait(timeout=30)
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    runner_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    server_cpu = (children1.ru_utime + children1.ru_stime) - (
        children0.ru_utime + children0.ru_stime
    )
    return {
        "papers": papers,
        "subscribers": subscribers,
        "sent": report.sent,
        "failures": report.temporary_failures + report.permanent_failures,
        "run_s": round(run_s, 1),
        "per_s": round(report.sent / run_s, 1) if run_s else None,
        "runner_cpu_s": round(runner_cpu, 1),
        "smtp_server_cpu_s": round(server_cpu, 1),
        "setup_s": round(setup_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=100_000)
    ap.add_argument("--grid", action="store_true", help="growth table over sizes")
    ap.add_argument("--keep", type=Path, help="folder to keep (and reuse) corpora and dbs in")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="paperradar-digest-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.grid:
        grid = [(10_000, 1_000), (10_000, 5_000), (100_000, 1_000), (100_000, 5_000)]
        grid += [(100_000, 10_000)]
    else:
        grid = [(args.papers, args.subscribers)]
    rows = []
    try:
        for papers, subs in grid:
            base = make_db(papers, folder)
            rows.append(one_run(base, papers, subs, folder))
            print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps({"machine": describe_host(), "rows": rows}, indent=2))
        return
    print(f"machine: {describe_host()}")
    print(
        f"{'papers':>8} {'subscribers':>11} {'sent':>7} {'fail':>5} {'run s':>7} {'mails/s':>8}"
        f" {'runner cpu s':>12} {'smtpd cpu s':>11}"
    )
    for r in rows:
        print(
            f"{r['papers']:>8,} {r['subscribers']:>11,} {r['sent']:>7,} {r['failures']:>5}"
            f" {r['run_s']:>7} {r['per_s']:>8} {r['runner_cpu_s']:>12} {r['smtp_server_cpu_s']:>11}"
        )


if __name__ == "__main__":
    main()

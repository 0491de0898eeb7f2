"""Ingest rate of JSON lines into SQLite (keyword index included), peak memory, and keyword
search latency at that size.

    python benchmarks/ingest_speed.py 100000          # makes the corpus with make_corpus.py
    python benchmarks/ingest_speed.py --corpus /tmp/corpus-1m.jsonl
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from host import KEYWORD_QUERIES, describe_host, make_corpus_file

from paperradar.engine import make_engine

QUERIES = KEYWORD_QUERIES


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", type=int, nargs="?", default=100_000)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if corpus is None:
            corpus = make_corpus_file(args.n, Path(tmp) / "corpus.jsonl")
        eng = make_engine(f"sqlite:///{tmp}/bench.db")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        report = eng.ingest_jsonl(corpus)
        took = time.perf_counter() - t
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        size = sum(f.stat().st_size for f in Path(tmp).glob("bench.db*"))
        rng = random.Random(1)
        lat = []
        for _ in range(args.queries):
            q = rng.choice(QUERIES)
            s = time.perf_counter()
            eng.search(q, mode="keyword", limit=20)
            lat.append((time.perf_counter() - s) * 1000)
        lat.sort()
        eng.close()
    print(f"machine: {describe_host()}")
    print(f"{'papers':>22}: {report.new:,}")
    print(
        f"{'ingest':>22}: {took:.1f} s = {report.new / took:,.0f} papers/s (JSONL -> SQLite + FTS5)"
    )
    print(f"{'peak RSS':>22}: {rss1 / 1024:.0f} MiB (before ingest {rss0 / 1024:.0f} MiB)")
    print(f"{'database size':>22}: {size / 2**20:.0f} MiB")
    print(f"{'keyword search p50':>22}: {lat[len(lat) // 2]:.1f} ms")
    print(f"{'keyword search p95':>22}: {lat[int(len(lat) * 0.95)]:.1f} ms")


if __name__ == "__main__":
    main()

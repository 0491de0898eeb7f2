"""Ingest rate of JSON lines into SQLite (keyword index included), peak memory, and keyword
search latency at that size.

    python benchmarks/ingest_speed.py 100000          # makes the corpus with make_corpus.py
    python benchmarks/ingest_speed.py --corpus /tmp/corpus-1m.jsonl
    python benchmarks/ingest_speed.py --corpus F --no-keyword-index   # everything but the index

Also prints the process CPU time and the wall time spent in the storage's keyword-index hooks
(``_fts_insert``/``_fts_delete``): the parse runs on a thread of its own beside the writer, so
the rate without the index is measured by a run with the hooks switched off, not by subtraction.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from host import KEYWORD_QUERIES, describe_host, make_corpus_file

from paperradar.engine import make_engine
from paperradar.storage.sql import SqlStorage

QUERIES = KEYWORD_QUERIES


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", type=int, nargs="?", default=100_000)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument(
        "--no-keyword-index",
        action="store_true",
        help="switch the keyword-index hooks off: the cost of everything else",
    )
    ap.add_argument("--tmp", type=Path, help="folder for the database (default: the system's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        corpus = args.corpus
        if corpus is None:
            corpus = make_corpus_file(args.n, Path(tmp) / "corpus.jsonl")
        eng = make_engine(f"sqlite:///{tmp}/bench.db")
        hook_s = _time_index_hooks(eng.storage, off=args.no_keyword_index)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu = time.process_time()
        t = time.perf_counter()
        report = eng.ingest_jsonl(corpus)
        took = time.perf_counter() - t
        cpu = time.process_time() - cpu
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
    what = (
        "JSONL -> SQLite, keyword index OFF"
        if args.no_keyword_index
        else "JSONL -> SQLite + keyword index"
    )
    print(f"{'ingest':>22}: {took:.1f} s = {report.new / took:,.0f} papers/s ({what})")
    print(
        f"{'process CPU':>22}: {cpu:.1f} s = {report.new / cpu:,.0f} papers per CPU-second "
        f"({cpu / took:.2f} cores busy on average)"
    )
    if not args.no_keyword_index:
        print(f"{'in keyword-index hooks':>22}: {hook_s[0]:.1f} s of the writer's wall time")
    print(f"{'load average after':>22}: {'{:.1f} {:.1f} {:.1f}'.format(*os.getloadavg())}")
    print(f"{'peak RSS':>22}: {rss1 / 1024:.0f} MiB (before ingest {rss0 / 1024:.0f} MiB)")
    print(f"{'database size':>22}: {size / 2**20:.0f} MiB")
    print(f"{'keyword search p50':>22}: {lat[len(lat) // 2]:.1f} ms")
    print(f"{'keyword search p95':>22}: {lat[int(len(lat) * 0.95)]:.1f} ms")


def _time_index_hooks(storage: object, *, off: bool) -> list[float]:
    """Wrap the storage's keyword-index hooks to add up their wall time (or switch them off)."""
    spent = [0.0]
    if not isinstance(storage, SqlStorage):
        return spent
    for name in ("_fts_insert", "_fts_delete"):
        hook = getattr(storage, name)

        def timed(conn: object, keys: object, _hook: object = hook) -> None:
            if off:
                return
            t = time.perf_counter()
            _hook(conn, keys)  # type: ignore[operator]
            spent[0] += time.perf_counter() - t

        setattr(storage, name, timed)
    return spent


if __name__ == "__main__":
    main()

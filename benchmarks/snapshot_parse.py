"""Snapshot parse throughput: build a synthetic N-line snapshot from the fixture's shape, parse it.

    PYTHONPATH=src python benchmarks/snapshot_parse.py [--lines 300000] [--gzip]

Prints lines/s and peak RSS (which must stay flat as N grows: the parse streams).
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

from paperradar.sources.arxiv_snapshot import parse_snapshot

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "shared/fixtures/kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.head200.jsonl"
)


def build(path: Path, lines: int, compress: bool, fixture: Path) -> None:
    """Cycle the 200 real lines, giving each a distinct new-style id so nothing dedupes."""
    rows = [orjson.loads(x) for x in fixture.read_bytes().splitlines() if x.strip()]
    opener = gzip.open if compress else open
    with opener(path, "wb") as out:  # type: ignore[operator]
        for i in range(lines):
            row = dict(rows[i % len(rows)])
            row["id"] = f"{15 + (i // 99999) % 10:02d}{1 + (i // 9999) % 12:02d}.{i % 99999:05d}"
            out.write(orjson.dumps(row) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("snap.jsonl.gz" if args.gzip else "snap.jsonl")
        build(path, args.lines, args.gzip, args.fixture)
        size = path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        papers = problems = 0
        for rec in parse_snapshot(path):
            if hasattr(rec, "title"):
                papers += 1
            else:
                problems += 1
        dt = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"{'file':<22}{'lines':>10}{'MB':>8}{'seconds':>9}{'lines/s':>10}{'MB/s':>7}"
        f"{'peak RSS MB':>13}"
    )
    print(
        f"{path.name:<22}{args.lines:>10}{size / 1e6:>8.1f}{dt:>9.2f}{args.lines / dt:>10.0f}"
        f"{size / 1e6 / dt:>7.1f}{rss / 1024:>13.1f}"
    )
    print(f"papers {papers}, problems {problems}, RSS before parse {rss_before / 1024:.1f} MB")


if __name__ == "__main__":
    main()

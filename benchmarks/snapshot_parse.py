"""Snapshot throughput: build a synthetic N-line snapshot from the fixture's shape, parse it —
or, with ``--ingest``, ingest it into a fresh SQLite database exactly as
``paperradar ingest snapshot`` does (batches + checkpoints + keyword index).

    PYTHONPATH=src python benchmarks/snapshot_parse.py [--lines 300000] [--gzip] [--ingest]

Prints lines/s and peak RSS (which must stay flat as N grows: run two sizes and compare).
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

from paperradar.engine import make_engine
from paperradar.harvest import snapshot_plan
from paperradar.sources.arxiv_snapshot import parse_snapshot

_REL = "fixtures/kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.head200.jsonl"
_SHARED = [
    *([Path(os.environ["PAPERRADAR_SHARED_DIR"])] if "PAPERRADAR_SHARED_DIR" in os.environ else []),
    *(parent / "shared" for parent in Path(__file__).resolve().parents),
]
FIXTURE = next((d / _REL for d in _SHARED if (d / _REL).is_file()), _SHARED[-1] / _REL)


def build(path: Path, lines: int, compress: bool, fixture: Path) -> None:
    """Cycle the 200 real lines, giving each a distinct new-style id, title and DOIs so nothing
    dedupes (as in the real snapshot, where each line is its own paper)."""
    rows = [orjson.loads(x) for x in fixture.read_bytes().splitlines() if x.strip()]
    opener = gzip.open if compress else open
    with opener(path, "wb") as out:  # type: ignore[operator]
        for i in range(lines):
            row = dict(rows[i % len(rows)])
            row["id"] = f"{15 + (i // 99999) % 10:02d}{1 + (i // 9999) % 12:02d}.{i % 99999:05d}"
            if i >= len(rows):  # real titles are distinct: copies must not match by title
                row["title"] = f"{row['title']} (copy {i // len(rows)})"
            if row.get("doi"):  # fresh DOIs too (the field may hold several)
                row["doi"] = " ".join(f"{d}.copy{i}" for d in row["doi"].split())
            out.write(orjson.dumps(row) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    ap.add_argument(
        "--ingest", action="store_true", help="ingest into SQLite (index included), not just parse"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("snap.jsonl.gz" if args.gzip else "snap.jsonl")
        build(path, args.lines, args.gzip, args.fixture)
        size = path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        papers = problems = 0
        if args.ingest:
            with make_engine(str(Path(tmp) / "snap.db")) as engine:
                report = engine.harvest(snapshot_plan(path))
                papers, problems = engine.stats()["papers"], report.rejected
        else:
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
    what = "ingested into SQLite (keyword index included)" if args.ingest else "parsed"
    print(f"{what}: papers {papers}, problems {problems}, RSS before {rss_before / 1024:.1f} MB")


if __name__ == "__main__":
    main()

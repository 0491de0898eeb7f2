"""Snapshot throughput: build a synthetic N-line snapshot from the fixture's shape, parse it —
or, with ``--ingest``, ingest it into a fresh SQLite database exactly as
``paperradar ingest snapshot`` does (batches + checkpoints + keyword index).

    PYTHONPATH=src python benchmarks/snapshot_parse.py [--lines 300000] [--gzip] [--ingest]
        [--no-keyword-index] [--tmp DIR]

Prints lines/s, process CPU time and peak RSS (which must stay flat as N grows: run two sizes and
compare). ``--no-keyword-index`` switches the storage's keyword-index hooks off, for the cost of
everything else.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import tempfile
import time
from pathlib import Path

import orjson
from host import describe_host

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
    ap.add_argument(
        "--no-keyword-index", action="store_true", help="with --ingest: keyword-index hooks off"
    )
    ap.add_argument("--tmp", type=Path, help="folder for the file and database")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / ("snap.jsonl.gz" if args.gzip else "snap.jsonl")
        build(path, args.lines, args.gzip, args.fixture)
        size = path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        cpu = time.process_time()
        papers = problems = 0
        if args.ingest:
            with make_engine(str(Path(tmp) / "snap.db")) as engine:
                if args.no_keyword_index:
                    engine.storage._fts_insert = lambda conn, ids: None  # type: ignore[attr-defined]
                    engine.storage._fts_delete = lambda conn, pks: None  # type: ignore[attr-defined]
                report = engine.harvest(snapshot_plan(path))
                papers, problems = engine.stats()["papers"], report.rejected
        else:
            for rec in parse_snapshot(path):
                if hasattr(rec, "title"):
                    papers += 1
                else:
                    problems += 1
        dt = time.perf_counter() - t0
        cpu = time.process_time() - cpu
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"machine: {describe_host()}")
    print(
        f"{'file':<22}{'lines':>10}{'MB':>8}{'seconds':>9}{'lines/s':>10}{'MB/s':>7}"
        f"{'peak RSS MB':>13}"
    )
    print(
        f"{path.name:<22}{args.lines:>10}{size / 1e6:>8.1f}{dt:>9.2f}{args.lines / dt:>10.0f}"
        f"{size / 1e6 / dt:>7.1f}{rss / 1024:>13.1f}"
    )
    what = "parsed"
    if args.ingest:
        index = "OFF" if args.no_keyword_index else "included"
        what = f"ingested into SQLite (keyword index {index})"
    print(
        f"process CPU {cpu:.1f} s = {args.lines / cpu:,.0f} lines per CPU-second; "
        f"load average after {'{:.1f} {:.1f} {:.1f}'.format(*os.getloadavg())}"
    )
    print(f"{what}: papers {papers}, problems {problems}, RSS before {rss_before / 1024:.1f} MB")


if __name__ == "__main__":
    main()

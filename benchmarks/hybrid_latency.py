"""Hybrid query latency (query embedding included) and resident memory at scale.

    python benchmarks/hybrid_latency.py 1000000 --work /tmp/hybrid-1m

Builds (once, kept in --work) a synthetic corpus of N papers with benchmarks/make_corpus.py,
ingests it into SQLite, and stores one 384-d vector per paper under the default model's name.
Embedding a million abstracts on two cores would take most of a day, so the stored vectors are
synthetic (clustered, normalised); the query is embedded by the real model every time, so the
measured latency is what a user waits for. Prints p50/p95 per mode, index build/load time and
the process's resident memory.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
from host import describe_host, make_corpus_file

from paperradar.engine import make_engine


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(n: int, work: Path, source: Path | None = None) -> Path:
    db = work / f"papers-{n}.db"
    if db.exists():
        return db
    tmp = work / "building.db"
    for f in work.glob("building.db*"):
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()
    if source is not None:  # a database of the same corpus (e.g. keyword_scale.py --keep)
        shutil.copyfile(source, tmp)
        if Path(f"{source}.keywords").is_dir():
            shutil.copytree(f"{source}.keywords", f"{tmp}.keywords")
        eng = make_engine(str(tmp), data_dir=work)
        have = eng.storage.stats()["papers"]
        if have != n:
            raise SystemExit(f"{source} holds {have:,} papers, not {n:,}")
        print(f"copied {n:,} papers from {source}", flush=True)
    else:
        corpus = work / f"corpus-{n}.jsonl"
        make_corpus_file(n, corpus)
        eng = make_engine(str(tmp), data_dir=work)
        t0 = time.perf_counter()
        eng.ingest_jsonl(corpus)
        print(f"ingested {n:,} papers in {time.perf_counter() - t0:.0f} s", flush=True)
    model = eng.embedder()
    assert model is not None
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((2000, model.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    last = 0
    t0 = time.perf_counter()
    while True:
        rows = eng.storage.papers_after(last, limit=20000)
        if not rows:
            break
        vecs = centres[rng.integers(0, 2000, len(rows))]
        vecs = vecs + rng.standard_normal(vecs.shape).astype(np.float32) * 0.06
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        eng.storage.write_embeddings(
            model.name,
            [
                (pk, "synthetic", v.astype("<f4").tobytes())
                for (pk, _), v in zip(rows, vecs, strict=False)
            ],
        )
        last = rows[-1][0]
    print(f"stored {n:,} synthetic vectors in {time.perf_counter() - t0:.0f} s", flush=True)
    eng.close()
    for f in work.glob("building.db*"):
        f.rename(work / f.name.replace("building.db", db.name))
    return db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--work", type=Path, default=Path("/tmp/paperradar-hybrid"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--from-db",
        type=Path,
        help="start from a copy of this database (with its .keywords index) instead of "
        "ingesting a new corpus, e.g. the one keyword_scale.py --keep built",
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db = build(args.n, args.work, args.from_db)
    print(describe_host(), flush=True)
    eng = make_engine(str(db), data_dir=args.work)
    t0 = time.perf_counter()
    index = eng.vector_index()
    assert index is not None
    size = len(index)
    info = index.info()
    print(
        f"vector index: {info.kind}, {size:,} vectors, ready in {time.perf_counter() - t0:.1f} s"
        + (f" ({info.message})" if info.message else "")
    )
    rnd = random.Random(5)
    titles = [
        p.title
        for p, _ in eng.storage.list_papers(
            __import__("paperradar.storage", fromlist=["PaperFilter"]).PaperFilter(), limit=2000
        )
    ]
    queries = [
        " ".join(rnd.choice(titles).split()[: rnd.randint(2, 6)]) for _ in range(args.queries)
    ]
    # CPU is the process's (every thread: the model's and the keyword half's too), per query:
    # on a loaded machine it says what a query costs when wall time says little.
    print(
        f"{'mode':<9} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'CPU p50':>8} {'CPU p95':>8} "
        f"{'load':>5}"
    )
    for mode in ("keyword", "semantic", "hybrid"):
        eng.search(queries[0], mode=mode)  # type: ignore[arg-type]
        took, cpu = [], []
        for q in queries:
            t, c = time.perf_counter(), time.process_time()
            eng.search(q, mode=mode, limit=20)  # type: ignore[arg-type]
            took.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        took.sort()
        cpu.sort()
        print(
            f"{mode:<9} {took[len(took) // 2]:7.1f} {took[int(len(took) * 0.95)]:7.1f} "
            f"{took[-1]:7.1f} {cpu[len(cpu) // 2]:8.1f} {cpu[int(len(cpu) * 0.95)]:8.1f} "
            f"{os.getloadavg()[0]:5.1f}",
            flush=True,
        )
    print(f"resident memory of this process: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

"""ANN index: build time, recall@10 against exact search, query latency and memory.

    python benchmarks/ann_index.py --sizes 100000,1000000 --queries 500

Vectors are synthetic but shaped like text embeddings: 384-d, L2-normalised, drawn around
2,000 cluster centres (a uniform random cloud is a much harder, unrealistic case). The index is
the one paperradar uses (usearch HNSW, cosine, int8-quantized, M=16, ef_add=128) searched at
several ``expansion_search`` values; latency is one query at a time, as a web request would.
With ``--rerank R`` (default 4, as paperradar does) 10×R candidates are re-ranked by exact cosine
(paperradar reads those from the database; here from memory).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
from host import describe_host
from usearch.index import Index

# paperradar.search.vector's settings (not imported: the installed paperradar may be another tree)
CONNECTIVITY = 16
EXPANSION_ADD = 128


def vectors(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    which = rng.integers(0, len(centres), n)
    out = centres[which] + rng.standard_normal((n, dim), dtype=np.float32) * 0.06
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 100):
        sims = queries[s : s + 100] @ data.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, 1).argsort(axis=1)[:, ::-1]
        out[s : s + 100] = np.take_along_axis(part, order, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--ef", default="32,64,96,128")
    ap.add_argument("--dtypes", default="i8,f16")
    ap.add_argument("--rerank", type=int, default=4, help="candidates per result, re-ranked")
    ap.add_argument("--expansion-add", type=int, default=EXPANSION_ADD, help="HNSW build breadth")
    ap.add_argument(
        "--keep",
        type=Path,
        help="keep each built index in this folder and load it on the next run instead of "
        "building again (build once unlocked and niced, then time the queries under the lock)",
    )
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((2000, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    print(describe_host(), flush=True)
    print(
        f"{'dtype':>5} {'n':>9} {'build s':>8} {'ef':>4} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'index MB':>8} {'file MB':>8} {'load':>5}"
    )
    for n, dtype in ((int(x), d) for x in args.sizes.split(",") for d in args.dtypes.split(",")):
        data = vectors(n, args.dim, np.random.default_rng(n), centres)
        queries = vectors(args.queries, args.dim, np.random.default_rng(n + 1), centres)
        truth = exact_top(data, queries, 10)
        kept = args.keep / f"ann-{n}-{dtype}-{args.expansion_add}.usearch" if args.keep else None
        if kept is not None and kept.is_file():
            index = Index.restore(str(kept), view=False)
            build = float("nan")  # printed by the run that built it
        else:
            index = Index(
                ndim=args.dim,
                metric="cos",
                dtype=dtype,
                connectivity=CONNECTIVITY,
                expansion_add=args.expansion_add,
                expansion_search=96,
            )
            t0, c0 = time.perf_counter(), time.process_time()
            index.add(np.arange(n, dtype=np.int64), data, threads=os.cpu_count() or 1)
            build = time.perf_counter() - t0
            print(
                f"built {n:,} {dtype} vectors (expansion_add {args.expansion_add}) in {build:.0f} s, "
                f"{time.process_time() - c0:.0f} CPU-s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        path = str(kept) if kept is not None else f"/tmp/ann-bench-{n}.usearch"
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.isfile(path):
            index.save(path)
        file_mb = os.path.getsize(path) / 2**20
        mem_mb = index.memory_usage / 2**20
        for ef in (int(x) for x in args.ef.split(",")):
            index.expansion_search = ef
            lat, hits = [], 0
            for qi, q in enumerate(queries):
                t = time.perf_counter()
                found = index.search(q, 10 * args.rerank)
                keys = np.asarray(found.keys, dtype=np.int64)
                if args.rerank > 1:  # paperradar re-ranks exactly from the stored fp32 vectors
                    keys = keys[np.argsort(-(data[keys] @ q))[:10]]
                lat.append(time.perf_counter() - t)
                hits += len(set(keys[:10].tolist()) & set(truth[qi].tolist()))
            lat.sort()
            print(
                f"{dtype:>5} {n:>9} {build:8.1f} {ef:>4} {hits / (10 * len(queries)):9.4f} "
                f"{lat[len(lat) // 2] * 1000:7.3f} {lat[int(len(lat) * 0.95)] * 1000:7.3f} "
                f"{mem_mb:8.0f} {file_mb:8.0f} {os.getloadavg()[0]:5.1f}",
                flush=True,
            )
        if kept is None:
            os.remove(path)
        del index, data
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this script (includes the fp32 vectors for ground truth): {peak:.0f} MB")


if __name__ == "__main__":
    main()

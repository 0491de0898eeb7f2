"""Vector index: build time, recall@10 against exact search, query latency and index memory.

    PYTHONPATH=src python benchmarks/ann_index.py --sizes 100000,1000000 --queries 500
    PYTHONPATH=src python benchmarks/ann_index.py --kind hnsw --sizes 100000   # usearch, to compare
    PYTHONPATH=src python benchmarks/ann_index.py --vectors real.npy --queries-from q.npy

Vectors are synthetic but shaped like text embeddings: 384-d, L2-normalised, drawn around
2,000 cluster centres plus Gaussian noise (0.06 a dimension), so that within a cluster the points
are nearly equidistant (a uniform random cloud is a much harder, unrealistic case; this one is
what defeated HNSW). ``--vectors FILE.npy`` takes real embeddings instead (queries: held-out rows,
or ``--queries-from``). The IVF index is built exactly as paperradar builds it
(``paperradar.search.vector.new_ivf``: k-means lists trained on a sample, int8 codes) and searched
at several ``nprobe`` values; ``--kind hnsw`` builds the usearch HNSW index of earlier versions
(i8, M=16) at several ``expansion_search`` values. Latency is one query at a time, as a web request
would; the R×10 candidates (``--rerank R``, default 4 as paperradar) are re-ranked by exact cosine
(paperradar reads those from the database; here from memory). "cpu p50/p95" is the querying
thread's CPU time per query: what a query costs when the machine is busy with other work. "index MB" is the growth of this
process's resident memory when the saved index is read back: the index's real memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from host import describe_host

from paperradar.search.vector import TRAIN_PER_LIST, lists_for, new_ivf


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


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_ivf(data: np.ndarray) -> Any:
    """What VectorIndex.rebuild does: lists trained on a uniform sample, then every vector."""
    import faiss

    n = len(data)
    share = min(1.0, lists_for(n) * TRAIN_PER_LIST / n)
    sample = data[np.random.default_rng(0).random(n) < share]
    index = new_ivf(faiss, sample, n)
    for s in range(0, n, 20000):  # paperradar adds the stored vectors in batches of 20,000
        index.add_with_ids(data[s : s + 20000], np.arange(s, min(n, s + 20000), dtype=np.int64))
    return index


def build_hnsw(data: np.ndarray, dtype: str, expansion_add: int) -> Any:
    from usearch.index import Index

    index = Index(
        ndim=data.shape[1], metric="cos", dtype=dtype, connectivity=16, expansion_add=expansion_add
    )
    index.add(np.arange(len(data), dtype=np.int64), data, threads=os.cpu_count() or 1)
    return index


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=("ivf", "hnsw"), default="ivf")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--nprobe", default="32,64,128,256", help="IVF lists scanned (--kind ivf)")
    ap.add_argument("--ef", default="64,128,256", help="expansion_search (--kind hnsw)")
    ap.add_argument("--dtypes", default="i8", help="HNSW scalar types (--kind hnsw)")
    ap.add_argument("--expansion-add", type=int, default=128, help="HNSW build breadth")
    ap.add_argument("--rerank", type=int, default=4, help="candidates per result, re-ranked")
    ap.add_argument("--vectors", type=Path, help="real embeddings (.npy, n x dim) instead")
    ap.add_argument("--queries-from", type=Path, help="query vectors (.npy) for --vectors")
    ap.add_argument(
        "--keep",
        type=Path,
        help="keep each built index in this folder and load it on the next run instead of "
        "building again (build once unlocked and niced, then time the queries under the lock)",
    )
    ap.add_argument("--build-only", action="store_true", help="build (and --keep) without timing")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((2000, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    print(describe_host(), flush=True)
    knob = "nprobe" if args.kind == "ivf" else "ef"
    print(
        f"{'kind':>7} {'n':>9} {'build s':>8} {knob:>6} {'recall@10':>9} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'cpu p50':>7} {'cpu p95':>7} {'index MB':>8} {'file MB':>8} {'load':>5}"
    )
    sizes = [int(x) for x in args.sizes.split(",")]
    variants = args.dtypes.split(",") if args.kind == "hnsw" else ["sq8"]
    for n, variant in ((n, v) for n in sizes for v in variants):
        if args.vectors is not None:
            real = np.load(args.vectors).astype(np.float32)
            real /= np.linalg.norm(real, axis=1, keepdims=True)
            if args.queries_from is not None:
                data = real[:n]
                queries = np.load(args.queries_from).astype(np.float32)[: args.queries]
                queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            else:  # hold out the last rows as queries
                data, queries = real[: min(n, len(real) - args.queries)], real[-args.queries :]
            n = len(data)
        else:
            cached = args.keep / f"vectors-{n}-{args.dim}.npy" if args.keep else None
            if cached is not None and cached.is_file():  # generating 1 M takes a while
                data = np.load(cached)
            else:
                data = vectors(n, args.dim, np.random.default_rng(n), centres)
                if cached is not None:
                    np.save(cached, data)
            queries = vectors(args.queries, args.dim, np.random.default_rng(n + 1), centres)
        truth = exact_top(data, queries, 10) if not args.build_only else None
        label = f"{args.kind}-{variant}" + (f"-{args.expansion_add}" if args.kind == "hnsw" else "")
        name = f"ann-{n}-{label}{'-' + args.vectors.stem if args.vectors else ''}"
        path = (args.keep or Path("/tmp")) / f"{name}.{args.kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        build = float("nan")  # printed by the run that built it
        if not path.is_file():
            t0, c0 = time.perf_counter(), time.process_time()
            if args.kind == "ivf":
                import faiss

                index = build_ivf(data)
                faiss.write_index(index, str(path))
            else:
                index = build_hnsw(data, variant, args.expansion_add)
                index.save(str(path))
            build = time.perf_counter() - t0
            print(
                f"built {n:,} {label} vectors in {build:.0f} s, "
                f"{time.process_time() - c0:.0f} CPU-s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            del index
        if args.build_only:
            continue
        before = rss_mb()
        if args.kind == "ivf":
            import faiss

            index = faiss.read_index(str(path))
        else:
            from usearch.index import Index

            index = Index.restore(str(path), view=False)
        mem_mb = rss_mb() - before
        file_mb = os.path.getsize(path) / 2**20
        for knob_value in (
            int(x) for x in (args.nprobe if args.kind == "ivf" else args.ef).split(",")
        ):
            lat, cpu, hits = [], [], 0
            for qi, q in enumerate(queries):
                t, c = time.perf_counter(), time.thread_time()
                if args.kind == "ivf":
                    index.nprobe = knob_value
                    _, found = index.search(q[None, :], 10 * args.rerank)
                    keys = found[0][found[0] >= 0]
                else:
                    index.expansion_search = knob_value
                    keys = np.asarray(index.search(q, 10 * args.rerank).keys, dtype=np.int64)
                if args.rerank > 1:  # paperradar re-ranks exactly from the stored fp32 vectors
                    keys = keys[np.argsort(-(data[keys] @ q))[:10]]
                lat.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
                assert truth is not None
                hits += len(set(keys[:10].tolist()) & set(truth[qi].tolist()))
            lat.sort()
            cpu.sort()
            print(
                f"{label:>7} {n:>9} {build:8.1f} {knob_value:>6} {hits / (10 * len(queries)):9.4f} "
                f"{lat[len(lat) // 2] * 1000:7.3f} {lat[int(len(lat) * 0.95)] * 1000:7.3f} "
                f"{cpu[len(cpu) // 2] * 1000:7.3f} {cpu[int(len(cpu) * 0.95)] * 1000:7.3f} "
                f"{mem_mb:8.0f} {file_mb:8.0f} {os.getloadavg()[0]:5.1f}",
                flush=True,
            )
        if args.keep is None:
            os.remove(path)
        del index, data
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this script (includes the fp32 vectors for ground truth): {peak:.0f} MB")


if __name__ == "__main__":
    main()

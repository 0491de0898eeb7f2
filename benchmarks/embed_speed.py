"""Embedding throughput (abstracts per second) per model/backend, and query-embedding latency.

    python benchmarks/embed_speed.py ../shared/benchmarks/scifact --docs 512 \
        --models minilm-int8-2x112,minilm-int8-2x128,minilm-bf16,minilm-q8,minilm-onnx,minilm-fp32

Documents are SciFact abstracts (title + abstract, cut at 256 tokens like the model does). Each
model embeds them once to warm up a batch, then all of them timed ("docs/s": the first pass, in
which OpenVINO also prepares its kernels for each new batch shape), then all of them again
("warm/s": what a long embedding job runs at, every shape seen). The load average is printed
because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from host import describe_host

from paperradar.embed import load_embedder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--docs", type=int, default=512)
    ap.add_argument(
        "--models",
        default="minilm-int8-2x112,minilm-int8-2x128,minilm-bf16,minilm-q8,minilm-onnx,minilm-fp32",
    )
    ap.add_argument("--batch", type=int, default=8, help="texts per model call (engine default)")
    args = ap.parse_args()
    docs = []
    with (args.folder / "corpus.jsonl").open() as fh:
        for line in fh:
            d = json.loads(line)
            docs.append(f"{d['title']}. {d['text']}")
            if len(docs) >= args.docs:
                break
    cache = Path(tempfile.gettempdir()) / "paperradar-models"
    print(describe_host(), flush=True)
    print(
        f"{'model':<12} {'name':<31} {'docs/s':>7} {'docs/cpu-s':>10} {'warm/s':>7} "
        f"{'query ms':>9} {'load':>5}"
    )
    for name in args.models.split(","):
        model = load_embedder(name, batch_size=args.batch, cache_dir=cache)
        model.embed_documents(docs[: args.batch])
        t0, c0 = time.perf_counter(), time.process_time()
        model.embed_documents(docs)
        rate = len(docs) / (time.perf_counter() - t0)
        per_cpu = len(docs) / (time.process_time() - c0)  # robust to a shared machine
        t0 = time.perf_counter()
        model.embed_documents(docs)
        warm = len(docs) / (time.perf_counter() - t0)
        lat = []
        for d in docs[:50]:
            t = time.perf_counter()
            model.embed_query(d[:80])
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        print(
            f"{name:<12} {model.name:<31} {rate:7.1f} {per_cpu:10.1f} {warm:7.1f} "
            f"{lat[len(lat) // 2]:9.1f} "
            f"{os.getloadavg()[0]:5.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

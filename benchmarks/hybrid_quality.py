"""SciFact (BEIR) quality of keyword, semantic and hybrid search per embedding model and fusion.

    python benchmarks/hybrid_quality.py ../shared/benchmarks/scifact --split train \
        --models minilm-q8,minilm-onnx --fusions rrf,rrf:20,linear:0.3,linear:0.5

The corpus is ingested and embedded once per model into ``--work`` (kept between runs, so
re-running with other fusions does not embed again). Prints nDCG@10 / Recall@100 per
(model, mode, fusion), the embedding throughput (docs/s) and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from paperradar.config import load_settings
from paperradar.engine import make_engine
from paperradar.search.beir import load_beir
from paperradar.search.metrics import mean, ndcg_at_k, recall_at_k
from paperradar.sources import records_to_batches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--split", default="train")
    ap.add_argument("--models", default="minilm-q8")
    ap.add_argument("--fusions", default="rrf")
    ap.add_argument("--work", type=Path, default=Path("/tmp/paperradar-quality"))
    args = ap.parse_args()
    data = load_beir(args.folder, args.split)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"split {args.split}: {len(data.queries)} queries")
    rows = []
    for model in args.models.split(","):
        db = args.work / f"scifact-{model}.db"
        fresh = not db.exists()
        settings = load_settings(embed_model=model, data_dir=args.work)
        eng = make_engine(str(db), settings=settings)
        if fresh:
            eng.ingest(records_to_batches("beir", data.papers()))
        started = time.perf_counter()
        report = eng.embed()
        if report.error:
            print(f"{model}: {report.error}")
            continue
        secs = time.perf_counter() - started
        if report.embedded:
            print(
                f"{model}: embedded {report.embedded} docs in {secs:.1f} s = "
                f"{report.embedded / secs:.1f} docs/s"
            )
        runs = [("keyword", "-"), ("semantic", "-")] + [
            ("hybrid", f) for f in args.fusions.split(",")
        ]
        for mode, fusion in runs:
            if fusion != "-":
                eng.settings.search_fusion = fusion
            ndcg, recall, took = [], [], []
            for qid, text in data.queries.items():
                t0 = time.perf_counter()
                res = eng.search(text, mode=mode, limit=100, syntax=False)  # type: ignore[arg-type]
                took.append(time.perf_counter() - t0)
                ranked = [h.paper.id for h in res.hits]
                ndcg.append(ndcg_at_k(ranked, data.qrels[qid], 10))
                recall.append(recall_at_k(ranked, data.qrels[qid], 100))
            took.sort()
            rows.append(
                (
                    model,
                    mode,
                    fusion,
                    mean(ndcg),
                    mean(recall),
                    took[len(took) // 2] * 1000,
                    took[int(len(took) * 0.95)] * 1000,
                )
            )
        eng.close()
    print(
        f"{'model':<12} {'mode':<9} {'fusion':<11} {'nDCG@10':>8} {'R@100':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7}"
    )
    for model, mode, fusion, n, r, p50, p95 in rows:
        print(f"{model:<12} {mode:<9} {fusion:<11} {n:8.4f} {r:7.4f} {p50:7.1f} {p95:7.1f}")


if __name__ == "__main__":
    main()

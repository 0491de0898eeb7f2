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
from paperradar.querylang import Query
from paperradar.search.beir import load_beir
from paperradar.search.fusion import make_fuse
from paperradar.search.metrics import mean, ndcg_at_k, recall_at_k
from paperradar.search.service import FUSION_DEPTH, MAX_PLAIN_TERMS
from paperradar.sources import records_to_batches
from paperradar.storage import PaperFilter


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
        # Retrieve each query's keyword and vector candidates once, then fuse them every way
        # (the same lists search_papers fuses: depth FUSION_DEPTH from each retriever).
        index = eng.vector_index()
        model_obj = eng.embedder()
        assert index is not None and model_obj is not None
        cands = []
        kw_took, vec_took = [], []
        for qid, text in data.queries.items():
            q = Query(terms=tuple(text.split()[:MAX_PLAIN_TERMS]))
            t0 = time.perf_counter()
            kw = eng.storage.keyword_search(q, PaperFilter(), limit=FUSION_DEPTH)
            kw_took.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            vec = index.search(model_obj.embed_query(text), None, FUSION_DEPTH)
            vec_took.append(time.perf_counter() - t0)
            cands.append((qid, [h.pk for h in kw], [h.score for h in kw], vec))
        ids = eng.storage.ids_for_pks(
            list({pk for _, a, _, v in cands for pk in a + [p for p, _ in v]})
        )
        runs = [("keyword", "-"), ("semantic", "-")] + [
            ("hybrid", f) for f in args.fusions.split(",")
        ]
        for mode, fusion in runs:
            ndcg, recall = [], []
            for qid, kw_pks, kw_scores, vec in cands:
                if mode == "keyword":
                    ranked_pks = kw_pks
                elif mode == "semantic":
                    ranked_pks = [p for p, _ in vec]
                else:
                    fused = make_fuse(fusion)(
                        [kw_pks, [p for p, _ in vec]], [kw_scores, [s for _, s in vec]]
                    )
                    ranked_pks = [p for p, _ in fused]
                ranked = [ids[p] for p in ranked_pks]
                ndcg.append(ndcg_at_k(ranked, data.qrels[qid], 10))
                recall.append(recall_at_k(ranked, data.qrels[qid], 100))
            rows.append((model, mode, fusion, mean(ndcg), mean(recall)))
        kw_took.sort()
        vec_took.sort()
        print(
            f"{model}: keyword retrieval p50 {kw_took[len(kw_took) // 2] * 1000:.1f} ms, "
            f"query embedding + vector search p50 {vec_took[len(vec_took) // 2] * 1000:.1f} ms"
        )
        eng.close()
    print(f"{'model':<12} {'mode':<9} {'fusion':<11} {'nDCG@10':>8} {'R@100':>7}")
    for model, mode, fusion, n, r in rows:
        print(f"{model:<12} {mode:<9} {fusion:<11} {n:8.4f} {r:7.4f}")


if __name__ == "__main__":
    main()

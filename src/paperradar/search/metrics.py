"""Retrieval quality metrics with BEIR / trec_eval conventions.

``ranked`` is a run for one query, best first; ``qrels`` maps document id to graded relevance
(> 0 is relevant). nDCG uses linear gain (the grade), a ``1/log2(rank + 1)`` discount and the
ideal DCG of the judged documents, as ``pytrec_eval``'s ``ndcg_cut`` does. A query with no
relevant documents scores 0 on every metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["mean", "mrr_at_k", "ndcg_at_k", "recall_at_k"]


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Normalized discounted cumulative gain of the top ``k`` of ``ranked``."""
    _check_k(k)
    dcg = sum(
        max(qrels.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k])
    )
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top ``k``."""
    _check_k(k)
    relevant = {doc for doc, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document in the top ``k`` (0 if none)."""
    _check_k(k)
    for rank, doc in enumerate(ranked[:k]):
        if qrels.get(doc, 0) > 0:
            return 1.0 / (rank + 1)
    return 0.0


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; 0 for no values (a benchmark with no queries scores 0)."""
    return sum(values) / len(values) if values else 0.0

"""Pure parts of personal ranking: score blending, a per-subscriber linear model on embeddings,
and maximal marginal relevance (MMR) for diversity. Arrays in, arrays out."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "blend",
    "fit_linear",
    "hashed_vectors",
    "mmr",
    "normalize_scores",
    "rank_scores",
]

FloatArray = npt.NDArray[np.float64]


def normalize_scores(scores: FloatArray) -> FloatArray:
    """Scale non-negative scores to [0, 1] by their maximum (all zeros stay zeros)."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, None)
    top = float(s.max()) if s.size else 0.0
    out: FloatArray = s / top if top > 0 else np.zeros_like(s)
    return out


def rank_scores(n: int, positions: npt.NDArray[np.int64], k: float = 10.0) -> FloatArray:
    """Scores in [0, 1] for items found at ``positions`` of a ranked list (0 = best): the
    reciprocal-rank weight k/(k+rank) used by reciprocal-rank fusion; 0 elsewhere."""
    out = np.zeros(n, dtype=np.float64)
    out[positions] = k / (k + np.arange(len(positions), dtype=np.float64))
    return out


def blend(personal: FloatArray, trending: FloatArray, trending_weight: float) -> FloatArray:
    """(1 − w)·personal + w·trending, both normalized to [0, 1] first."""
    w = min(max(trending_weight, 0.0), 1.0)
    out = (1.0 - w) * normalize_scores(personal) + w * normalize_scores(trending)
    return np.asarray(out, dtype=np.float64)


def fit_linear(x: FloatArray, y: FloatArray, *, l2: float = 1.0) -> FloatArray:
    """A ridge-regression classifier on ±1 labels (rows of ``x`` are L2-normalised embeddings):
    the closed form w = (XᵀX + λI)⁻¹ Xᵀy with a bias column. Score new rows with ``x @ w[:-1] +
    w[-1]``. Small (tens of ratings) and deterministic, like arxiv-sanity's per-tag SVM."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])
    gram = xb.T @ xb + l2 * np.eye(xb.shape[1])
    return np.asarray(np.linalg.solve(gram, xb.T @ y), dtype=np.float64)


def hashed_vectors(token_lists: list[list[str]], dim: int = 256) -> FloatArray:
    """L2-normalised hashed bag-of-words vectors (a cheap similarity for MMR when there are no
    embeddings). Uses a stable hash (not Python's salted ``hash``)."""
    out = np.zeros((len(token_lists), dim), dtype=np.float64)
    for i, tokens in enumerate(token_lists):
        for t in tokens:
            h = 2166136261
            for ch in t.encode():
                h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
            out[i, h % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: FloatArray = out / np.where(norms == 0, 1.0, norms)
    return result


def mmr(relevance: FloatArray, vectors: FloatArray, k: int, lam: float = 0.7) -> list[int]:
    """Maximal marginal relevance: pick ``k`` indices greedily maximising
    λ·relevance − (1−λ)·max cosine similarity to what is already picked. ``vectors`` rows are
    L2-normalised. Ties break by index, so the result is deterministic."""
    n = relevance.shape[0]
    k = min(k, n)
    if k <= 0:
        return []
    picked: list[int] = []
    max_sim = np.zeros(n, dtype=np.float64)
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        gain = lam * relevance - (1.0 - lam) * max_sim
        gain = np.where(available, gain, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
    return picked

"""Pure personal-ranking parts: MMR diversity, the linear model, blending."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from paperradar.rank.personal import blend, fit_linear, hashed_vectors, mmr, normalize_scores


def test_mmr_spreads_picks_over_topics() -> None:
    # Three near-duplicates of topic A score highest; one B paper slightly lower.
    vec = np.array([[1.0, 0.0], [1.0, 0.0], [0.999, 0.045], [0.0, 1.0]])
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    rel = np.array([1.0, 0.99, 0.98, 0.9])
    assert mmr(rel, vec, 2, lam=0.7) == [0, 3]
    assert mmr(rel, vec, 2, lam=1.0) == [0, 1]  # no diversity: plain relevance order


@given(n=st.integers(min_value=0, max_value=30), k=st.integers(min_value=0, max_value=40))
def test_mmr_picks_distinct_items(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 100 + k)
    vec = hashed_vectors([[f"w{rng.integers(0, 20)}" for _ in range(4)] for _ in range(n)])
    picked = mmr(rng.random(n), vec, k)
    assert len(picked) == min(n, k) and len(set(picked)) == len(picked)


def test_linear_model_separates_likes_from_dislikes() -> None:
    rng = np.random.default_rng(1)
    likes = rng.normal([1, 0, 0], 0.1, size=(6, 3))
    dislikes = rng.normal([0, 1, 0], 0.1, size=(6, 3))
    x = np.vstack([likes, dislikes])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = fit_linear(x, np.array([1.0] * 6 + [-1.0] * 6))
    assert float(np.array([1, 0, 0]) @ w[:-1] + w[-1]) > float(np.array([0, 1, 0]) @ w[:-1] + w[-1])


def test_blend_weights_and_normalises() -> None:
    personal, trending = np.array([2.0, 0.0, 1.0]), np.array([0.0, 10.0, 5.0])
    assert blend(personal, trending, 0.0).tolist() == [1.0, 0.0, 0.5]
    assert blend(personal, trending, 1.0).tolist() == [0.0, 1.0, 0.5]
    assert normalize_scores(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]

"""The trending score: reader signal with a time decay. Pure: arrays and timestamps in, scores out.

For paper *i* with age *a_i* (now minus published, else first seen; never negative)::

    signal_i = w_up·log1p(upvotes) + w_comments·log1p(comments) + w_stars·log1p(stars)
             + w_growth·log1p(max(star growth, 0)) + w_citations·log1p(citations)
             + w_clicks·log1p(clicks) + w_saves·log1p(saves) + base
    score_i  = signal_i · 2^(−a_i / half_life)

``log1p`` damps the heavy tails (one paper with 5,000 stars should not bury every other signal);
the weights say how much one "e-fold" of each signal is worth. ``base`` > 0 lets a brand-new paper
with no signal yet rank by recency alone. The half-life depends on the window: a paper loses half
its weight every 12 hours in the day list, every 2 days in the week list and every 7 days in the
month list. Every weight is non-negative, so the score is non-decreasing in each signal and, with
``base`` > 0, strictly decreasing in age. Missing values count as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

__all__ = ["HALF_LIFE", "TrendingWeights", "ages_in_hours", "trending_score"]

FloatArray = npt.NDArray[np.float64]

HALF_LIFE: dict[str, timedelta] = {
    "day": timedelta(hours=12),
    "week": timedelta(days=2),
    "month": timedelta(days=7),
}


@dataclass(frozen=True, slots=True)
class TrendingWeights:
    """Weights of each signal (non-negative). Tune here; defaults favour community signal."""

    upvotes: float = 1.0
    comments: float = 0.5
    stars: float = 0.6
    star_growth: float = 0.8
    citations: float = 0.4
    clicks: float = 0.7
    saves: float = 1.0
    base: float = 0.25
    half_life: dict[str, timedelta] = field(default_factory=lambda: dict(HALF_LIFE))

    def __post_init__(self) -> None:
        for name in (
            "upvotes",
            "comments",
            "stars",
            "star_growth",
            "citations",
            "clicks",
            "saves",
            "base",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"trending weight {name} must be >= 0")


def _arr(values: Sequence[float | int | None] | FloatArray | None, n: int) -> FloatArray:
    if values is None:
        return np.zeros(n)
    out = np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(f"every signal needs {n} values, got {out.shape[0]}")
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1e12), 0.0, None)


def ages_in_hours(
    timestamps: Sequence[datetime | None], now: datetime, *, missing_hours: float = 1e6
) -> FloatArray:
    """Hours from each timestamp to ``now`` (aware datetimes), 0 for future ones, ``missing_hours``
    (effectively "very old") for unknown ones."""
    return np.array(
        [
            missing_hours if t is None else max((now - t).total_seconds() / 3600.0, 0.0)
            for t in timestamps
        ],
        dtype=np.float64,
    )


def trending_score(
    ages_hours: Sequence[float] | FloatArray,
    *,
    upvotes: Sequence[float | int | None] | FloatArray | None = None,
    comments: Sequence[float | int | None] | FloatArray | None = None,
    stars: Sequence[float | int | None] | FloatArray | None = None,
    star_growth: Sequence[float | int | None] | FloatArray | None = None,
    citations: Sequence[float | int | None] | FloatArray | None = None,
    clicks: Sequence[float | int | None] | FloatArray | None = None,
    saves: Sequence[float | int | None] | FloatArray | None = None,
    window: str = "week",
    weights: TrendingWeights | None = None,
) -> FloatArray:
    """The trending score of each paper (higher is more trending); see the module docstring."""
    w = weights or TrendingWeights()
    ages = np.clip(np.asarray(ages_hours, dtype=np.float64), 0.0, None)
    n = ages.shape[0]
    if window not in w.half_life:
        raise ValueError(f"unknown trending window {window!r}: use one of {sorted(w.half_life)}")
    half = w.half_life[window].total_seconds() / 3600.0
    signal = (
        w.upvotes * np.log1p(_arr(upvotes, n))
        + w.comments * np.log1p(_arr(comments, n))
        + w.stars * np.log1p(_arr(stars, n))
        + w.star_growth * np.log1p(_arr(star_growth, n))
        + w.citations * np.log1p(_arr(citations, n))
        + w.clicks * np.log1p(_arr(clicks, n))
        + w.saves * np.log1p(_arr(saves, n))
        + w.base
    )
    result: FloatArray = signal * np.exp2(-ages / half)
    return result

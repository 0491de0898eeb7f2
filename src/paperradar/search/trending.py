"""Trending papers of a window: gather candidates from storage, score them with the pure
``rank.trending`` score, best first."""

from __future__ import annotations

from datetime import datetime, timedelta

from paperradar.model import Paper
from paperradar.rank.trending import TrendingWeights, ages_in_hours, trending_score
from paperradar.storage import PaperFilter, Storage

__all__ = ["WINDOWS", "score_papers", "trending_papers"]

WINDOWS: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}
POOL = 1000  # most-upvoted and newest papers of the window scored per call


def _star_growth(p: Paper) -> int | None:
    value = p.extra.get("stars_growth")
    return int(value) if isinstance(value, int | float) else None


def score_papers(
    papers: list[Paper],
    now: datetime,
    window: str,
    events: dict[str, dict[str, int]] | None = None,
    weights: TrendingWeights | None = None,
) -> list[float]:
    """The trending score of each paper at ``now``."""
    if not papers:
        return []
    ev = events or {}
    ages = ages_in_hours([p.published or p.first_seen for p in papers], now)
    scores = trending_score(
        ages,
        upvotes=[p.upvotes for p in papers],
        comments=[p.comments for p in papers],
        stars=[p.stars for p in papers],
        star_growth=[_star_growth(p) for p in papers],
        citations=[p.citations for p in papers],
        clicks=[ev.get(p.id, {}).get("click", 0) for p in papers],
        saves=[ev.get(p.id, {}).get("save", 0) for p in papers],
        window=window,
        weights=weights,
    )
    return [float(s) for s in scores]


def trending_papers(
    storage: Storage,
    *,
    window: str,
    now: datetime,
    limit: int,
    weights: TrendingWeights | None = None,
) -> list[tuple[Paper, float]]:
    """The ``limit`` most trending papers published (else first seen) within the window.

    Candidates: the window's most-upvoted and newest papers plus every paper our readers
    clicked or saved in the window (scoring every paper of a busy month would not pay)."""
    since = now - WINDOWS[window]
    flt = PaperFilter(since=since)
    pool: dict[str, Paper] = {}
    for sort in ("upvotes", "first_seen"):
        for p, _ in storage.list_papers(flt, sort=sort, limit=POOL):
            pool[p.id] = p
    events = storage.event_counts(since)
    missing = [pid for pid in events if pid not in pool]
    for p in storage.get_papers(missing):
        if (p.published or p.first_seen or now) >= since:
            pool[p.id] = p
    papers = list(pool.values())
    scores = score_papers(papers, now, window, events, weights)
    ranked = sorted(zip(papers, scores, strict=True), key=lambda t: (-t[1], t[0].id))
    return ranked[:limit]

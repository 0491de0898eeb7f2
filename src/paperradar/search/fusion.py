"""Fusing keyword and vector result lists: reciprocal-rank fusion or a linear blend of
normalised scores. Both are pure: ranked pk lists (and their scores) in, one ranking out."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Fuse", "linear_blend", "make_fuse", "rrf"]

Fuse = Callable[[list[list[int]], list[list[float]]], list[tuple[int, float]]]


def rrf(
    ranked_lists: list[list[int]], scores: list[list[float]], k: int = 60
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each list gives 1/(k + rank); ties broken by pk."""
    total: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, pk in enumerate(ranked):
            total[pk] = total.get(pk, 0.0) + 1.0 / (k + rank + 1)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


def linear_blend(
    ranked_lists: list[list[int]], scores: list[list[float]], weights: tuple[float, ...]
) -> list[tuple[int, float]]:
    """Sum of ``weights[i]`` × the min-max normalised score of list i (0 when absent)."""
    total: dict[int, float] = {}
    for ranked, raw, weight in zip(ranked_lists, scores, weights, strict=False):
        if not ranked:
            continue
        lo, hi = min(raw), max(raw)
        span = hi - lo
        for pk, s in zip(ranked, raw, strict=True):
            norm = (s - lo) / span if span > 0 else 1.0
            total[pk] = total.get(pk, 0.0) + weight * norm
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


def make_fuse(spec: str) -> Fuse:
    """``rrf`` / ``rrf:K`` or ``linear:W`` (W is the keyword weight, 1-W the vector one)."""
    name, _, arg = spec.partition(":")
    if name == "rrf":
        k = int(arg) if arg else 60
        return lambda lists, scores: rrf(lists, scores, k=k)
    if name == "linear":
        w = float(arg) if arg else 0.5
        return lambda lists, scores: linear_blend(lists, scores, (w, 1.0 - w))
    raise ValueError(f"unknown fusion {spec!r}: use rrf, rrf:K or linear:W")

"""Composing one subscriber's digest: candidates, personal scores, blend with trending, MMR,
no repeats, and the reason for every pick. The pure math lives in ``rank.personal``; this module
gathers the inputs (storage, the engine's search and more-like-these, embeddings when present).

Candidates are the papers paperradar first saw since the subscriber's previous digest (for the
first one: within the last period) plus the trending papers of the period. Scores:

* query matches — each interest query through the engine's search (hybrid when embeddings are
  there), reciprocal-rank weighted;
* categories and authors — exact matches on the paper;
* followed and liked papers — the engine's more-like-these over them, and the cosine to their
  embedding centroid when embeddings exist;
* a per-subscriber ridge classifier on embeddings once they have rated at least
  ``MIN_RATINGS`` papers both ways ("more/less like this" links);
* blended with the trending score; diversified with MMR; never a paper already sent or disliked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from paperradar.errors import PaperradarError
from paperradar.model import Paper
from paperradar.rank.personal import (
    fit_linear,
    hashed_vectors,
    mmr,
    normalize_scores,
    rank_scores,
)
from paperradar.storage import Cursor, PaperFilter, Storage
from paperradar.storage.base import Subscription

__all__ = ["Composer", "DigestItem", "Pool", "build_pool"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
SearchFn = Callable[[str], list[str]]  # query -> paper ids, best first
SimilarFn = Callable[[tuple[str, ...]], list[str]]  # seed ids -> paper ids, best first

FEW_SEEDS = 3  # up to this many followed/liked papers are searched one by one (shared cache)
MAX_SEEDS = 50  # a larger profile is searched as one set of its newest papers
MIN_RATINGS = 6  # ratings (with both likes and dislikes) before the linear model kicks in
WEIGHTS = {
    "query": 1.0,
    "category": 0.6,
    "author": 0.9,
    "similar": 0.7,
    "centroid": 0.7,
    "model": 1.0,
}
_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(slots=True)
class DigestItem:
    paper: Paper
    score: float
    reasons: list[str]


@dataclass(slots=True)
class Pool:
    """The papers a run considers, with per-paper arrays aligned to ``papers``."""

    papers: list[Paper]
    first_seen: FloatArray  # epoch seconds
    trending: FloatArray
    is_trending: npt.NDArray[np.bool_]
    vectors: FloatArray  # rows L2-normalised, for MMR
    embeddings: dict[str, FloatArray] = field(default_factory=dict)  # paper id -> unit vector
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {p.id: i for i, p in enumerate(self.papers)}


def _tokens(p: Paper) -> list[str]:
    return _WORD.findall(p.title.lower()) + [f"cat:{c}" for c in p.categories]


def build_pool(
    storage: Storage,
    *,
    since: datetime,
    cap: int,
    trending: Sequence[tuple[Paper, float]],
    embed_model: str | None,
    extra_ids: Sequence[str] = (),
) -> Pool:
    """Papers first seen since ``since`` (at most ``cap``, newest first) plus ``trending``."""
    found: dict[str, Paper] = {}
    after: Cursor | None = None
    while len(found) < cap:
        rows = storage.list_papers(
            PaperFilter(), sort="first_seen", limit=min(1000, cap - len(found)), after=after
        )
        if not rows:
            break
        for p, _ in rows:
            if p.first_seen is not None and p.first_seen >= since:
                found[p.id] = p
        last = rows[-1][0].first_seen
        if last is None or last < since:
            break
        after = rows[-1][1]
    tscore = {p.id: s for p, s in trending}
    for p, _ in trending:
        found.setdefault(p.id, p)
    papers = list(found.values())
    first_seen = np.array(
        [p.first_seen.timestamp() if p.first_seen else 0.0 for p in papers], dtype=np.float64
    )
    pool = Pool(
        papers=papers,
        first_seen=first_seen,
        trending=np.array([tscore.get(p.id, 0.0) for p in papers], dtype=np.float64),
        is_trending=np.array([p.id in tscore for p in papers], dtype=bool),
        vectors=hashed_vectors([_tokens(p) for p in papers]),
    )
    if embed_model:
        pool.embeddings = _load_embeddings(storage, embed_model, [*found, *extra_ids])
        dims = {v.shape[0] for v in pool.embeddings.values()}
        if len(dims) == 1 and len(pool.embeddings) == len(papers):
            pool.vectors = np.stack([pool.embeddings[p.id] for p in papers])
    return pool


def _load_embeddings(storage: Storage, model: str, ids: Sequence[str]) -> dict[str, FloatArray]:
    pks = storage.pks_for_ids(list(dict.fromkeys(ids)))
    by_pk = {pk: pid for pid, pk in pks.items()}
    out: dict[str, FloatArray] = {}
    for batch in storage.iter_embeddings(model):
        for pk, raw in batch:
            pid = by_pk.get(pk)
            if pid is not None:
                v = np.frombuffer(raw, dtype="<f4").astype(np.float64)
                n = float(np.linalg.norm(v))
                if n > 0:
                    out[pid] = v / n
    return out


class Composer:
    """Composes digests over one pool; caches search results across subscribers of a run."""

    def __init__(
        self,
        pool: Pool,
        *,
        search: SearchFn,
        similar: SimilarFn,
        trending_weight: float = 0.25,
    ) -> None:
        self.pool = pool
        self._search = search
        self._similar = similar
        self.trending_weight = trending_weight
        self._cache: dict[tuple[str, str], FloatArray] = {}
        self._errors: dict[str, str] = {}
        self._authors: list[str] | None = None
        self._emb: FloatArray | None = None
        # What every digest of the run shares, computed once: the normalised trending scores,
        # the threshold of the top trending fifth, a row of zeros.
        self._trending_norm = normalize_scores(pool.trending)
        self._trending_top = _top_quantile(pool.trending)
        self._zeros = np.zeros(len(pool.papers))
        self._zeros.flags.writeable = False

    # -- cached signals over the pool --------------------------------------------------------
    def _hits_to_scores(self, ids: list[str]) -> FloatArray:
        positions = np.array(
            [self.pool.index[i] for i in ids if i in self.pool.index], dtype=np.int64
        )
        return rank_scores(len(self.pool.papers), positions)

    def query_scores(self, query: str) -> FloatArray:
        key = ("q", query)
        if key not in self._cache:
            try:
                ids = self._search(query)
            except PaperradarError as exc:
                self._errors[query] = str(exc)
                log.warning("digest interest query %r skipped: %s", query, exc)
                ids = []
            self._cache[key] = self._hits_to_scores(ids)
        return self._cache[key]

    def prefetch(
        self, queries: Sequence[str], seed_sets: Sequence[tuple[str, ...]], workers: int = 2
    ) -> None:
        """Run the distinct searches of a whole run up front, ``workers`` at a time (the
        database does the work outside the GIL), so composing each digest only reads caches."""
        if not self.pool.papers:
            return  # nothing to pick from: no digest reads a search
        todo_q = [q for q in dict.fromkeys(queries) if ("q", q) not in self._cache]
        groups: list[tuple[str, ...]] = []
        for seeds in seed_sets:
            groups += [(s,) for s in seeds] if len(seeds) <= FEW_SEEDS else [seeds[-MAX_SEEDS:]]
        todo_s = [g for g in dict.fromkeys(groups) if ("s", "\x1f".join(g)) not in self._cache]
        if workers <= 1 or len(todo_q) + len(todo_s) < 2:
            return
        with ThreadPoolExecutor(workers, "paperradar-search") as pool:
            list(pool.map(self.query_scores, todo_q))
            list(pool.map(lambda g: self.similar_scores(g), todo_s))

    def category_mask(self, cat: str) -> FloatArray:
        key = ("c", cat)
        if key not in self._cache:
            exact = "." in cat
            self._cache[key] = np.array(
                [
                    any(c == cat or (not exact and c.split(".")[0] == cat) for c in p.categories)
                    for p in self.pool.papers
                ],
                dtype=np.float64,
            )
        return self._cache[key]

    def author_mask(self, name: str) -> FloatArray:
        key = ("a", name.lower())
        if key not in self._cache:
            if self._authors is None:
                self._authors = ["\x1f".join(p.author_names).lower() for p in self.pool.papers]
            needle = name.lower()
            self._cache[key] = np.array([needle in a for a in self._authors], dtype=np.float64)
        return self._cache[key]

    def similar_scores(self, seeds: tuple[str, ...]) -> FloatArray:
        """Similarity to ``seeds``. A few seeds (followed papers, likes): the best of each seed's
        more-like-this ranking, one cached search per distinct seed shared by every subscriber
        following it. Many (a BibTeX library): one more-like-these over the ``MAX_SEEDS``
        highest ids (the newest, for arXiv ids), cached for the set."""
        groups = [(s,) for s in seeds] if len(seeds) <= FEW_SEEDS else [seeds[-MAX_SEEDS:]]
        out = np.zeros(len(self.pool.papers))
        for group in groups:
            key = ("s", "\x1f".join(group))
            if key not in self._cache:
                try:
                    ids = self._similar(group)
                except PaperradarError as exc:
                    log.warning("more-like-these over %d papers skipped: %s", len(group), exc)
                    ids = []
                self._cache[key] = self._hits_to_scores(ids)
            out = np.maximum(out, self._cache[key])
        return out

    def _embedding_matrix(self) -> FloatArray | None:
        if self._emb is None and self.pool.embeddings:
            dims = {v.shape[0] for v in self.pool.embeddings.values()}
            if len(dims) != 1:
                return None
            d = dims.pop()
            mat = np.zeros((len(self.pool.papers), d), dtype=np.float64)
            for i, p in enumerate(self.pool.papers):
                v = self.pool.embeddings.get(p.id)
                if v is not None:
                    mat[i] = v
            self._emb = mat
        return self._emb

    # -- one subscriber -----------------------------------------------------------------------
    def compose(
        self,
        sub: Subscription,
        *,
        since: datetime,
        sent: set[str],
        ratings: dict[str, int],
    ) -> list[DigestItem]:
        pool = self.pool
        n = len(pool.papers)
        if n == 0:
            return []
        it = sub.interests
        eligible = (pool.first_seen >= since.timestamp()) | pool.is_trending
        # Never a paper already sent, already rated, or one the subscriber follows.
        for pid in [*sent, *(p for p, v in ratings.items() if v != 0), *it.follow]:
            i = pool.index.get(pid)
            if i is not None:
                eligible[i] = False
        parts: dict[str, FloatArray] = {}
        why_q: list[tuple[str, FloatArray]] = []
        if it.queries:
            total = np.zeros(n)
            for q in it.queries:
                s = self.query_scores(q)
                why_q.append((q, s))
                total = np.maximum(total, s)
            parts["query"] = total
        why_c: list[tuple[str, FloatArray]] = []
        if it.categories:
            masks = [(c, self.category_mask(c)) for c in it.categories]
            why_c = masks
            parts["category"] = np.max(np.stack([m for _, m in masks]), axis=0)
        why_a: list[tuple[str, FloatArray]] = []
        if it.authors:
            masks = [(a, self.author_mask(a)) for a in it.authors]
            why_a = masks
            parts["author"] = np.max(np.stack([m for _, m in masks]), axis=0)
        liked = tuple(sorted({*it.follow, *(p for p, v in ratings.items() if v > 0)}))
        if liked:
            parts["similar"] = self.similar_scores(liked)
        emb = self._embedding_matrix()
        if emb is not None and liked:
            seeds = [pool.embeddings[p] for p in liked if p in pool.embeddings]
            if seeds:
                centroid = np.mean(np.stack(seeds), axis=0)
                norm = float(np.linalg.norm(centroid))
                if norm > 0:
                    parts["centroid"] = np.clip(emb @ (centroid / norm), 0.0, None)
        if emb is not None:
            rated = [(p, v) for p, v in ratings.items() if p in pool.embeddings and v != 0]
            pos = sum(1 for _, v in rated if v > 0)
            if len(rated) >= MIN_RATINGS and 0 < pos < len(rated):
                x = np.stack([pool.embeddings[p] for p, _ in rated])
                y = np.array([float(v) for _, v in rated])
                w = fit_linear(x, y)
                parts["model"] = np.clip(emb @ w[:-1] + w[-1], 0.0, None)
        personal = np.zeros(n)
        for name, arr in parts.items():
            personal += WEIGHTS[name] * arr
        if not parts:  # "just trending" (or nothing else given): blend(personal, trending, 1)
            score = self._trending_norm
            keep = eligible & pool.is_trending
        else:  # blend(personal, trending, w), with the trending half computed once per run
            tw = min(max(self.trending_weight, 0.0), 1.0)
            score = (1.0 - tw) * normalize_scores(personal) + tw * self._trending_norm
            keep = eligible & ((personal > 0) | pool.is_trending)
            if not it.trending:
                keep &= (personal > 0) | (pool.trending >= self._trending_top)
        idx = np.flatnonzero(keep & (score > 0))
        if idx.size == 0:
            return []
        k = max(1, sub.max_items)
        shortlist = idx[np.argsort(-score[idx], kind="stable")][: 3 * k]
        picked = mmr(score[shortlist], pool.vectors[shortlist], k)
        zeros = self._zeros
        similar, centroid = parts.get("similar", zeros), parts.get("centroid", zeros)
        model = parts.get("model", zeros)
        out: list[DigestItem] = []
        for j in picked:
            i = int(shortlist[j])
            p = pool.papers[i]
            reasons: list[str] = []
            reasons += [f'matches "{q}"' for q, s in why_q if s[i] > 0]
            reasons += [f"in {c}" for c, m in why_c if m[i] > 0]
            reasons += [f"by {a}" for a, m in why_a if m[i] > 0]
            if similar[i] > 0 or centroid[i] > 0.5:
                reasons.append("like papers you follow or liked")
            if model[i] > 0.2:
                reasons.append("fits your ratings")
            trend = _trend_reason(p) if pool.is_trending[i] else None
            if trend:
                reasons.append(trend)
            out.append(DigestItem(p, float(score[i]), reasons or ["new since your last digest"]))
        return out


def _top_quantile(values: FloatArray) -> float:
    positive = values[values > 0]
    return float(np.quantile(positive, 0.8)) if positive.size else float("inf")


def _trend_reason(p: Paper) -> str | None:
    bits = []
    if p.upvotes:
        bits.append(f"{p.upvotes} upvotes")
    if p.stars:
        bits.append(f"{p.stars} GitHub stars")
    if p.citations:
        bits.append(f"{p.citations} citations")
    return f"trending ({', '.join(bits)})" if bits else None

"""Similar papers. With embeddings: nearest neighbours of the papers' vectors (see the engine).
Without: "more like this" over the keyword index, from the papers' most telling words.

"Telling" is tf-idf against :class:`TermStats`, document frequencies counted over a sample of
the collection (the engine keeps one per process, refreshed hourly). In a large collection
(a sample of at least ``CUTOFF_SAMPLE`` papers) words in more than ``MAX_DF`` of the papers are
left out, as Lucene's MoreLikeThis does with ``maxDocFreq``: they say little about a paper, and
an OR query over them makes the keyword index score most of the collection (seconds at 100,000
papers, against tens of milliseconds for the distinctive words)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from paperradar.model import Paper
from paperradar.querylang import Query
from paperradar.storage import KeywordHit, PaperFilter, Storage
from paperradar.storage.fts import STOP_WORDS

__all__ = ["PoolMoreLikeThis", "TermStats", "more_like_this_query", "similar_by_keywords"]

_WORD = re.compile(r"[^\W\d_]{3,}")
TITLE_WEIGHT = 3
MAX_TERMS = 12  # 12 distinctive words: ~60 ms at 100,000 papers (24: ~145 ms)
SAMPLE = 2000  # papers whose words make the document frequencies
CUTOFF_SAMPLE = 1000  # below this many sampled papers no word is left out for being common
MAX_DF = 0.01  # share of the papers a word may appear in and still describe one (large sets)
MIN_TERMS = 3  # when every word is common, the least common ones still make a query


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


@dataclass(frozen=True, slots=True)
class TermStats:
    """Document frequencies of words over ``docs`` sampled papers."""

    docs: int
    df: dict[str, int]

    @classmethod
    def from_papers(cls, papers: Iterable[Paper]) -> TermStats:
        df: Counter[str] = Counter()
        docs = 0
        for p in papers:
            docs += 1
            df.update(set(_words(p.title)) | set(_words(p.abstract)))
        return cls(docs, dict(df))

    def idf(self, word: str) -> float:
        return math.log((self.docs + 1) / (self.df.get(word, 0) + 1)) + 1.0

    def common(self, word: str) -> bool:
        return self.docs >= CUTOFF_SAMPLE and self.df.get(word, 0) > MAX_DF * self.docs


def more_like_this_query(papers: Sequence[Paper], stats: TermStats | None = None) -> Query:
    """A query of the words that best describe ``papers``: title words count thrice, weighted by
    rarity (tf-idf) when ``stats`` are given, common words left out in a large collection."""
    counts: Counter[str] = Counter()
    for p in papers:
        for w in _words(p.title):
            counts[w] += TITLE_WEIGHT
        for w in _words(p.abstract):
            counts[w] += 1
    if stats is None:
        return Query(terms=tuple(w for w, _ in counts.most_common(MAX_TERMS)))
    ranked = sorted(counts, key=lambda w: (-counts[w] * stats.idf(w), w))
    kept = [w for w in ranked if not stats.common(w)]
    if len(kept) < MIN_TERMS:
        rare_first = sorted(counts, key=lambda w: (stats.df.get(w, 0), w))
        kept = list(dict.fromkeys([*kept, *rare_first]))[:MIN_TERMS]
    return Query(terms=tuple(kept[:MAX_TERMS]))


def similar_by_keywords(
    storage: Storage, papers: Sequence[Paper], limit: int, stats: TermStats | None = None
) -> list[KeywordHit]:
    query = more_like_this_query(papers, stats)
    own = {p.id for p in papers}
    hits = storage.keyword_search(query, PaperFilter(), limit=limit + len(own))
    return [h for h in hits if h.id not in own][:limit]


class PoolMoreLikeThis:
    """ "More like this" among a fixed set of papers (a digest run's candidates), in memory: the
    words of :func:`more_like_this_query`, each candidate scored BM25-style on them (title words
    count ``TITLE_WEIGHT`` times, as in the query). One pass over the candidates' words when
    built, then about a millisecond per seed set: what a keyword query over the whole collection
    would rank, restricted to the papers that can be picked anyway."""

    K1 = 1.2
    B = 0.75

    def __init__(self, papers: Sequence[Paper], stats: TermStats) -> None:
        self.stats = stats
        self.ids = [p.id for p in papers]
        self._pos = {pid: i for i, pid in enumerate(self.ids)}
        rows: dict[str, list[int]] = {}
        tfs: dict[str, list[float]] = {}
        lengths = np.zeros(len(papers))
        common = {w for w in stats.df if stats.common(w)}  # never query terms (see MAX_DF)
        for i, p in enumerate(papers):
            title = _words(p.title)
            counts = Counter(_words(p.abstract))
            for w in title:
                counts[w] += TITLE_WEIGHT
            lengths[i] = counts.total()
            for w in counts.keys() - common:
                rows.setdefault(w, []).append(i)
                tfs.setdefault(w, []).append(float(counts[w]))
        avg = float(lengths.mean()) if len(papers) and lengths.mean() > 0 else 1.0
        self._norm = self.K1 * (1.0 - self.B + self.B * lengths / avg)
        self._postings = {w: (np.array(rows[w], dtype=np.int64), np.array(tfs[w])) for w in rows}

    def similar(self, seeds: Sequence[Paper], limit: int) -> list[str]:
        """Ids of the candidates most like ``seeds`` (never a seed), best first."""
        if not self.ids or not seeds:
            return []
        scores = np.zeros(len(self.ids))
        for term in more_like_this_query(seeds, self.stats).terms:
            found = self._postings.get(term)
            if found is None:
                continue
            rows, tf = found
            scores[rows] += self.stats.idf(term) * tf * (self.K1 + 1.0) / (tf + self._norm[rows])
        for p in seeds:
            i = self._pos.get(p.id)
            if i is not None:
                scores[i] = 0.0
        hits = np.flatnonzero(scores > 0)
        order = hits[np.lexsort((hits, -scores[hits]))][:limit]
        return [self.ids[int(i)] for i in order]

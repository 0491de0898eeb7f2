"""Similar papers. With embeddings: nearest neighbours of the papers' vectors (see the engine).
Without: "more like this" over the keyword index, from the papers' most telling words."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from paperradar.model import Paper
from paperradar.querylang import Query
from paperradar.storage import KeywordHit, PaperFilter, Storage
from paperradar.storage.fts import STOP_WORDS

__all__ = ["more_like_this_query", "similar_by_keywords"]

_WORD = re.compile(r"[^\W\d_]{3,}")
TITLE_WEIGHT = 3
MAX_TERMS = 24


def more_like_this_query(papers: Sequence[Paper]) -> Query:
    """A query of the words that best describe ``papers``: title words count thrice."""
    counts: Counter[str] = Counter()
    for p in papers:
        for w in _WORD.findall(p.title.lower()):
            if w not in STOP_WORDS:
                counts[w] += TITLE_WEIGHT
        for w in _WORD.findall(p.abstract.lower()):
            if w not in STOP_WORDS:
                counts[w] += 1
    terms = tuple(w for w, _ in counts.most_common(MAX_TERMS))
    return Query(terms=terms)


def similar_by_keywords(storage: Storage, papers: Sequence[Paper], limit: int) -> list[KeywordHit]:
    query = more_like_this_query(papers)
    own = {p.id for p in papers}
    hits = storage.keyword_search(query, PaperFilter(), limit=limit + len(own))
    return [h for h in hits if h.id not in own][:limit]

"""Records → normalized papers → storage, with the dedupe and merge rules of DESIGN.md.

One paper, many sources: records merge by canonical id, DOI, or — for papers known only by
title (page dumps, BibTeX without ids) — by title key. Merging keeps the richest field, unions
authors' affiliations, categories, links, versions and sources, and keeps the max of counts. A
title-keyed row is folded into the arXiv/DOI row once the paper's real id is known.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from paperradar.model import Author, Paper, ParseProblem, title_key
from paperradar.sources import Batch
from paperradar.sources.arxiv_oai import deleted_id
from paperradar.sources.enrich import not_found_id
from paperradar.storage import Storage

__all__ = ["IngestReport", "ingest_batches", "merge_papers"]

MAX_PROBLEMS_KEPT = 1000


@dataclass(slots=True)
class IngestReport:
    read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped: int = 0  # records that are no papers by design: deleted upstream, not found
    problems: list[ParseProblem] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.read += other.read
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.skipped += other.skipped
        room = MAX_PROBLEMS_KEPT - len(self.problems)
        self.problems.extend(other.problems[: max(room, 0)])

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "problems": [str(p) for p in self.problems],
        }


def _id_rank(paper_id: str) -> int:
    if paper_id.startswith("title:"):
        return 0
    if paper_id.startswith("doi:"):
        return 1
    return 2


def _richer(a: str, b: str) -> str:
    return b if len(b.strip()) > len(a.strip()) else a


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _union(a: list[str], b: list[str]) -> list[str]:
    return a + [x for x in b if x not in a]


def _merge_authors(a: list[Author], b: list[Author]) -> list[Author]:
    base, other = (a, b) if len(a) >= len(b) else (b, a)
    affs = {x.name.casefold(): x.affiliations for x in other}
    return [Author(x.name, _union(x.affiliations, affs.get(x.name.casefold(), []))) for x in base]


def merge_papers(old: Paper, new: Paper) -> Paper:
    """The paper that results from ``new`` information arriving about ``old``.

    Deterministic and idempotent: ``merge_papers(p, p) == p``.
    """
    best_id = new.id if _id_rank(new.id) > _id_rank(old.id) else old.id
    versions = {v.version: v for v in old.versions}
    for v in new.versions:
        if v.version not in versions or (versions[v.version].date is None and v.date is not None):
            versions[v.version] = v
    published = [d for d in (old.published, new.published) if d is not None]
    updated = [d for d in (old.updated, new.updated) if d is not None]
    firsts = [d for d in (old.first_seen, new.first_seen) if d is not None]
    return Paper(
        id=best_id,
        title=_richer(old.title, new.title),
        abstract=_richer(old.abstract, new.abstract),
        authors=_merge_authors(old.authors, new.authors),
        arxiv_id=old.arxiv_id or new.arxiv_id,
        version=_max(old.version, new.version),
        doi=old.doi or new.doi,
        categories=_union(old.categories, new.categories),
        primary_category=old.primary_category or new.primary_category,
        published=min(published) if published else None,
        updated=max(updated) if updated else None,
        links={**new.links, **old.links},
        upvotes=_max(old.upvotes, new.upvotes),
        comments=_max(old.comments, new.comments),
        stars=_max(old.stars, new.stars),
        citations=_max(old.citations, new.citations),
        sources=_union(old.sources, new.sources),
        versions=[versions[k] for k in sorted(versions)],
        extra={**old.extra, **new.extra},
        first_seen=min(firsts) if firsts else None,
    )


class _Index:
    """Papers by id, DOI and title key, for matching incoming records."""

    def __init__(self, papers: Iterable[Paper]) -> None:
        self.by_id: dict[str, Paper] = {}
        self.by_doi: dict[str, str] = {}
        self.by_title: dict[str, list[str]] = {}
        for p in papers:
            self.put(p)

    def put(self, p: Paper) -> None:
        self.by_id[p.id] = p
        if p.doi:
            self.by_doi[p.doi] = p.id
        if p.title.strip():
            ids = self.by_title.setdefault(title_key(p.title), [])
            if p.id not in ids:
                ids.append(p.id)

    def drop(self, paper_id: str) -> None:
        p = self.by_id.pop(paper_id, None)
        if p is None:
            return
        if p.doi and self.by_doi.get(p.doi) == paper_id:
            del self.by_doi[p.doi]
        if p.title.strip():
            ids = self.by_title.get(title_key(p.title), [])
            if paper_id in ids:
                ids.remove(paper_id)

    def match(self, p: Paper) -> Paper | None:
        if p.id in self.by_id:
            return self.by_id[p.id]
        if p.doi and p.doi in self.by_doi:
            same_doi = self.by_id[self.by_doi[p.doi]]
            # two different arXiv papers citing one DOI (parts I and II, an erratum) stay apart
            if not (p.arxiv_id and same_doi.arxiv_id and p.arxiv_id != same_doi.arxiv_id):
                return same_doi
        if not p.title.strip():
            return None
        candidates = self.by_title.get(title_key(p.title), [])
        if p.id.startswith("title:"):
            # A paper known only by title joins whatever paper has that title (best id first).
            ranked = sorted(candidates, key=_id_rank, reverse=True)
            return self.by_id[ranked[0]] if ranked else None
        # A paper with a real id absorbs a title-only row, never another real id.
        for cid in candidates:
            if cid.startswith("title:"):
                return self.by_id[cid]
        return None


def _ingest_batch(storage: Storage, batch: Batch, state_key: str) -> IngestReport:
    report = IngestReport()
    incoming: list[Paper] = []
    for rec in batch.records:
        report.read += 1
        if isinstance(rec, ParseProblem):
            if deleted_id(rec) is not None or not_found_id(rec) is not None:
                report.skipped += 1
            else:
                report.rejected += 1
                report.problems.append(rec)
        else:
            incoming.append(rec)
    stored = {p.id: p for p in storage.find_related(incoming)} if incoming else {}
    index = _Index(stored.values())
    touched: dict[str, Paper] = {}
    deletes: set[str] = set()
    for p in incoming:
        target = index.match(p)
        merged = p if target is None else merge_papers(target, p)
        if target is not None and target.id != merged.id:
            index.drop(target.id)
            touched.pop(target.id, None)
            if target.id in stored:
                deletes.add(target.id)
        index.put(merged)
        touched[merged.id] = merged
    upserts = []
    for pid, p in touched.items():
        before = stored.get(pid)
        if before is None:
            report.new += 1
            upserts.append(p)
        elif dataclasses.replace(p, first_seen=before.first_seen) != before:
            report.updated += 1
            upserts.append(p)
        else:
            report.unchanged += 1
    report.unchanged += len(incoming) - len(touched)  # repeats inside the batch
    deletes -= set(touched)
    storage.write_papers(
        upserts,
        sorted(deletes),
        source=state_key,
        checkpoint=batch.checkpoint,
        counts=(len(incoming), report.new, report.updated, report.rejected),
    )
    return report


# A bulk ingest allocates millions of short-lived containers (records, rows, token lists) and no
# cyclic garbage: with the default thresholds (700, 10, 10) the cyclic collector ran every 700
# of them and rescanned the heap every 70,000, some 8 % of an ingest's CPU. While any ingest
# runs, the young generation is collected every GC_YOUNG allocations instead.
GC_YOUNG = 50_000
_gc_state: list[Any] = [0, None]  # ingests running, the thresholds before the first one
_gc_lock = threading.Lock()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    with _gc_lock:
        if _gc_state[0] == 0:
            _gc_state[1] = gc.get_threshold()
            gc.set_threshold(max(GC_YOUNG, _gc_state[1][0]), *_gc_state[1][1:])
        _gc_state[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_state[0] -= 1
            if _gc_state[0] == 0:
                gc.set_threshold(*_gc_state[1])


def ingest_batches(
    storage: Storage,
    batches: Iterable[Batch],
    *,
    state_key: str | None = None,
    on_batch: Callable[[Batch, IngestReport], None] | None = None,
) -> IngestReport:
    """Store every batch (papers + checkpoint in one transaction each) and report the totals.

    ``state_key`` names the source's row in the source state (default: the batch's source).
    """
    total = IngestReport()
    with _fewer_collections():
        for batch in batches:
            part = _ingest_batch(storage, batch, state_key or batch.source)
            total.add(part)
            if on_batch is not None:
                on_batch(batch, part)
    return total

"""The storage contract every backend implements, and the plain values it speaks in."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from paperradar.errors import InvalidQuery
from paperradar.model import Paper
from paperradar.querylang import Query

__all__ = [
    "Cursor",
    "Job",
    "KeywordHit",
    "PaperFilter",
    "SortKey",
    "SourceState",
    "Storage",
]

SortKey = Literal["published", "first_seen", "upvotes"]


@dataclass(slots=True)
class PaperFilter:
    """Filters shared by listing, keyword and vector search. Empty means "no constraint".

    Values inside one field OR together; different fields AND.
    """

    categories: list[str] = field(default_factory=list)  # exact or prefix ("cs" matches "cs.LG")
    authors: list[str] = field(default_factory=list)  # case-insensitive substring of a name
    years: list[tuple[int | None, int | None]] = field(default_factory=list)  # inclusive ranges
    since: datetime | None = None  # published (else first seen by us) at or after, UTC
    published_from: datetime | None = None
    published_to: datetime | None = None  # exclusive
    sources: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    exclude: Query | None = None  # leave out rows matching this query's -exclusions

    def is_empty(self) -> bool:
        return not (
            self.categories
            or self.authors
            or self.years
            or self.since
            or self.published_from
            or self.published_to
            or self.sources
            or self.ids
            or (self.exclude is not None and self.exclude.has_exclusions)
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """A keyset position: the sort value and the row's pk of the last item seen."""

    value: float | str | None
    pk: int

    def encode(self) -> str:
        raw = json.dumps([self.value, self.pk], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            value, pk = json.loads(raw)
            if not isinstance(pk, int) or not isinstance(value, float | int | str | None):
                raise ValueError("bad cursor shape")
        except (ValueError, TypeError) as exc:
            raise InvalidQuery(
                f"bad page cursor {token!r}: pass the cursor a response gave"
            ) from exc
        return cls(value, pk)


@dataclass(frozen=True, slots=True)
class KeywordHit:
    pk: int
    id: str
    score: float  # higher is better


@dataclass(slots=True)
class SourceState:
    source: str
    checkpoint: dict[str, Any] = field(default_factory=dict)
    last_run: datetime | None = None
    last_error: str | None = None
    seen: int = 0
    new: int = 0
    updated: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed unit of work. ``attempts`` counts this claim (1 on the first run)."""

    id: int
    kind: str
    payload: dict[str, Any]
    key: str | None
    attempts: int
    max_attempts: int
    locked_until: datetime


@runtime_checkable
class Storage(Protocol):
    """What the rest of paperradar needs from a database. SQL never leaves ``storage/``."""

    url: str

    def close(self) -> None: ...

    # papers
    def find_related(self, papers: Sequence[Paper]) -> list[Paper]:
        """Stored papers sharing an id, a DOI or a title key with any of ``papers``."""
        ...

    def write_papers(
        self,
        upserts: Sequence[Paper],
        deletes: Sequence[str] = (),
        *,
        source: str | None = None,
        checkpoint: dict[str, Any] | None = None,
        counts: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> None:
        """Insert or replace ``upserts`` (by id), delete ``deletes`` (merged away), and record the
        source's checkpoint and (seen, new, updated, rejected) counts — all in one transaction."""
        ...

    def get_paper(self, paper_id: str) -> Paper | None: ...

    def get_papers(self, paper_ids: Sequence[str]) -> list[Paper]: ...

    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]: ...

    def pks_for_ids(self, paper_ids: Sequence[str]) -> dict[str, int]: ...

    def count_papers(self, flt: PaperFilter | None = None) -> int: ...

    def list_papers(
        self,
        flt: PaperFilter,
        *,
        sort: SortKey = "published",
        limit: int = 50,
        after: Cursor | None = None,
    ) -> list[tuple[Paper, Cursor]]: ...

    def iter_papers(self, batch_size: int = 1000) -> Iterator[Paper]: ...

    def papers_after(self, pk: int, limit: int = 1000) -> list[tuple[int, Paper]]:
        """Up to ``limit`` papers with a pk greater than ``pk``, in pk order (copying, paging)."""
        ...

    def ids_for_pks(self, pks: Sequence[int]) -> dict[int, str]: ...

    def keyword_search(
        self,
        query: Query,
        flt: PaperFilter,
        *,
        limit: int = 20,
        after: Cursor | None = None,
        require_all: bool = False,
    ) -> list[KeywordHit]:
        """Papers matching ``query``'s text (terms OR-ed, or all required), best BM25 first."""
        ...

    def filter_pks(self, flt: PaperFilter, pks: Sequence[int]) -> set[int]:
        """The subset of ``pks`` whose papers pass ``flt``."""
        ...

    def stats(self) -> dict[str, Any]: ...

    # sources
    def source_state(self, source: str) -> SourceState | None: ...

    def source_states(self) -> list[SourceState]: ...

    def record_source_error(self, source: str, error: str | None) -> None: ...

    def restore_source_states(self, states: Sequence[SourceState]) -> None:
        """Write ``states`` as they are (replacing rows of the same source): for copying."""
        ...

    # embeddings
    def embedding_backlog(self, model: str, limit: int) -> list[tuple[int, str, str]]:
        """Up to ``limit`` papers (pk, content hash, text) whose stored vector for ``model`` is
        missing or stale."""
        ...

    def write_embeddings(self, model: str, rows: Sequence[tuple[int, str, bytes]]) -> None: ...

    def iter_embeddings(
        self, model: str, batch_size: int = 10000, *, after: int = 0
    ) -> Iterator[list[tuple[int, bytes]]]:
        """Stored vectors of ``model`` with a pk above ``after``, in pk order, in batches."""
        ...

    def embeddings_for(self, model: str, pks: Sequence[int]) -> dict[int, bytes]:
        """The stored ``model`` vectors (float32 bytes) of those ``pks`` that have one."""
        ...

    def count_embeddings(self, model: str) -> int: ...

    def embedding_models(self) -> list[str]: ...

    def nearest_embeddings(
        self, model: str, vector: bytes, limit: int, flt: PaperFilter | None = None
    ) -> list[tuple[int, float]]:
        """The ``limit`` papers whose ``model`` vectors are nearest ``vector`` (float32 bytes) by
        cosine, as (pk, cosine similarity), best first. Exact on SQLite; pgvector HNSW
        (approximate) on PostgreSQL when the extension is installed."""
        ...

    # work distribution
    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        run_after: datetime | None = None,
        max_attempts: int = 5,
    ) -> int:
        """Queue a job and return its id. With ``key``, at most one job per key is pending
        (queued or running): enqueueing it again returns the pending job's id."""
        ...

    def claim(
        self, kinds: Sequence[str], worker_id: str, lease: float, *, limit: int = 1
    ) -> list[Job]:
        """Take up to ``limit`` due jobs of ``kinds`` for ``lease`` seconds. No two workers ever
        hold the same job; a job whose lease ran out (its worker died) is claimable again."""
        ...

    def extend_lease(self, job_id: int, worker_id: str, lease: float) -> bool:
        """Keep holding a job ``lease`` more seconds; False when the lease was lost."""
        ...

    def complete(self, job_id: int, worker_id: str) -> bool:
        """Mark a job done; False (and nothing changes) when ``worker_id`` no longer holds it."""
        ...

    def fail(self, job_id: int, worker_id: str, error: str, *, backoff: float = 30.0) -> bool:
        """Give a job back after an error: retried after ``backoff`` × 2^(attempts-1) seconds,
        or failed for good after ``max_attempts``. False when ``worker_id`` no longer holds it."""
        ...

    def job_counts(self) -> dict[str, int]:
        """Jobs per state (queued, running, done, failed), for monitoring."""
        ...

    def purge_jobs(self, finished_before: datetime) -> int:
        """Delete done and failed jobs finished before a time; the number deleted."""
        ...

    def claim_schedule(self, name: str, now: datetime, next_run: datetime, worker_id: str) -> bool:
        """True for exactly one caller when schedule ``name`` is due at ``now`` (a schedule seen
        for the first time is due); that caller's ``next_run`` becomes the next due time."""
        ...

"""The storage contract every backend implements, and the plain values it speaks in."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from paperradar.errors import InvalidQuery
from paperradar.model import Paper
from paperradar.querylang import Query

__all__ = [
    "Cursor",
    "DigestClaim",
    "Interests",
    "Job",
    "KeywordHit",
    "PaperFilter",
    "SortKey",
    "SourceState",
    "Storage",
    "Subscription",
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
                f"bad page cursor {token!r}: pass the cursor a response gave", field="cursor"
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


@dataclass(slots=True)
class Interests:
    """What a subscriber wants: queries (our query syntax), categories, authors, papers to follow
    ("more like these"; a BibTeX library lands here), or just the trending list."""

    queries: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    follow: list[str] = field(default_factory=list)  # paper ids
    trending: bool = False  # "just trending" (also the fallback when nothing else is given)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "categories": self.categories,
            "authors": self.authors,
            "follow": self.follow,
            "trending": self.trending,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interests:
        return cls(
            queries=[str(x) for x in d.get("queries", [])],
            categories=[str(x) for x in d.get("categories", [])],
            authors=[str(x) for x in d.get("authors", [])],
            follow=[str(x) for x in d.get("follow", [])],
            trending=bool(d.get("trending", False)),
        )

    def is_empty(self) -> bool:
        return not (self.queries or self.categories or self.authors or self.follow)


@dataclass(slots=True)
class Subscription:
    """An email subscriber. ``status``: pending (unconfirmed), active, paused (after repeated
    permanent delivery failures), unsubscribed."""

    id: int
    email: str
    status: str = "pending"
    interests: Interests = field(default_factory=Interests)
    frequency: str = "daily"  # daily | weekly
    send_hour: int = 7  # local hour in ``timezone``
    timezone: str = "UTC"
    max_items: int = 20
    weekends: bool = True
    created: datetime | None = None
    confirmed: datetime | None = None
    mailed: datetime | None = None
    last_digest: datetime | None = None
    failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DigestClaim:
    """A (subscription, period) whose digest this runner now holds the lease on. ``items`` is
    the digest composed by an earlier attempt (re-sent unchanged), None on the first attempt."""

    subscription_id: int
    period: str
    message_id: str
    attempts: int
    items: list[dict[str, Any]] | None


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

    def keyword_listing(
        self,
        query: Query,
        flt: PaperFilter,
        *,
        limit: int = 50,
        after: Cursor | None = None,
    ) -> list[tuple[Paper, Cursor]]:
        """The papers matching every word of ``query``'s text, newest first: ``list_papers``'s
        ``published`` order (published, else first seen; then pk) and cursors."""
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
    def embedding_backlog(
        self, model: str, limit: int, *, pk_from: int = 0, pk_to: int | None = None
    ) -> list[tuple[int, str, str]]:
        """Up to ``limit`` papers (pk, content hash, text) whose stored vector for ``model`` is
        missing or stale, in pk order; only pks in ``[pk_from, pk_to)`` when given."""
        ...

    def embedding_backlog_blocks(self, model: str, block: int) -> list[int]:
        """The numbers ``pk // block`` of the pk blocks holding backlog papers, ascending."""
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

    # subscriptions and digests
    def save_subscription(self, sub: Subscription) -> Subscription:
        """Insert (``id`` 0) or update a subscription by id; the stored row (with its id).
        Raises StorageError when another subscription has the email."""
        ...

    def get_subscription(self, sub_id: int) -> Subscription | None: ...

    def subscription_by_email(self, email: str) -> Subscription | None:
        """The subscription of an address (compared lower-cased)."""
        ...

    def list_subscriptions(self, status: str | None = None) -> list[Subscription]: ...

    def claim_digests(
        self,
        wanted: Sequence[tuple[int, str, str]],
        owner: str,
        lease: float,
        now: datetime,
    ) -> list[DigestClaim]:
        """Of ``wanted`` (subscription id, period, message id), take those no other runner holds:
        new ledger rows, or unsent rows whose lease ran out. A sent (or permanently failed) row
        is never claimed again. One transaction; two runners never hold the same row."""
        ...

    def save_digest_items(
        self, sub_id: int, period: str, owner: str, items: list[dict[str, Any]]
    ) -> bool:
        """Store the composed digest on a held row; False when the lease was lost."""
        ...

    def save_digests(
        self, owner: str, rows: Sequence[tuple[int, str, list[dict[str, Any]]]]
    ) -> set[int]:
        """``save_digest_items`` for many (subscription id, period, items) in one transaction;
        the subscription ids whose rows were still held."""
        ...

    def finish_digest(
        self, sub_id: int, period: str, owner: str, paper_ids: Sequence[str], now: datetime
    ) -> bool:
        """Mark a held row sent, remember the papers sent and the time of this digest (one
        transaction). False when the lease was lost (nothing changes)."""
        ...

    def release_digest(
        self,
        sub_id: int,
        period: str,
        owner: str,
        error: str,
        *,
        permanent: bool,
        pause_after: int,
    ) -> bool:
        """Give a held row back after an error. Temporary: claimable by the next run at once.
        Permanent: the period is given up, the subscription's failure count rises and it is
        paused at ``pause_after`` consecutive failures."""
        ...

    def ledger(self, sub_id: int) -> list[dict[str, Any]]:
        """The ledger rows of a subscription, oldest period first (for reports and tests)."""
        ...

    def sent_paper_ids(self, sub_ids: Sequence[int]) -> dict[int, set[str]]: ...

    def set_feedback(self, sub_id: int, paper_id: str, value: int, now: datetime) -> None: ...

    def feedback_for(self, sub_ids: Sequence[int]) -> dict[int, dict[str, int]]: ...

    def record_event(self, paper_id: str, kind: str, now: datetime) -> None:
        """A reader event on a paper (``click``, ``save``) for the trending score."""
        ...

    def event_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        """Events per paper id and kind at or after ``since``."""
        ...

    # work distribution (continued)
    def release(self, job_id: int, worker_id: str) -> bool:
        """Give a held job back unfinished (a worker shutting down): queued again at once, and
        this claim does not count as an attempt. False when ``worker_id`` no longer holds it."""
        ...

    def job_counts_by_kind(self) -> list[tuple[str, str, int]]:
        """(kind, state, number of jobs) for every kind and state present, for monitoring."""
        ...

    def digest_counts(self) -> dict[str, int]:
        """Digests in the ledger per state (``sent``, ``failed``, …) and ``attempts``: the
        delivery attempts of them all, for monitoring."""
        ...

    # operations
    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's migration revision, the newest revision this code knows)."""
        ...

    def rebuild_keyword_index(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Build the keyword index again from the papers; returns the papers indexed.
        Raises FeatureUnavailable where the database keeps that index itself (PostgreSQL)."""
        ...

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

    # embeddings
    def embedding_backlog(self, model: str, limit: int) -> list[tuple[int, str, str]]:
        """Up to ``limit`` papers (pk, content hash, text) whose stored vector for ``model`` is
        missing or stale."""
        ...

    def write_embeddings(self, model: str, rows: Sequence[tuple[int, str, bytes]]) -> None: ...

    def iter_embeddings(
        self, model: str, batch_size: int = 10000
    ) -> Iterator[list[tuple[int, bytes]]]: ...

    def count_embeddings(self, model: str) -> int: ...

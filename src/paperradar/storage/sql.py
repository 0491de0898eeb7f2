"""SQL shared by every backend (SQLAlchemy Core). Backends add full-text search and pragmas."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from paperradar.errors import StorageError
from paperradar.model import Author, Paper, Version, title_key
from paperradar.querylang import Query
from paperradar.storage.base import Cursor, Job, KeywordHit, PaperFilter, SortKey, SourceState
from paperradar.storage.schema import (
    embeddings,
    jobs,
    paper_versions,
    papers,
    schedules,
    source_state,
)

__all__ = ["SqlStorage", "content_hash", "paper_text"]

MIGRATIONS = Path(__file__).parent / "migrations"
CHUNK = 4000  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def paper_text(title: str, abstract: str) -> str:
    """The text that is embedded for a paper."""
    return f"{title}. {abstract}".strip() if abstract else title


def content_hash(title: str, abstract: str) -> str:
    return hashlib.sha1(paper_text(title, abstract).encode()).hexdigest()[:20]


def _naive_utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _spaced(values: Sequence[str]) -> str:
    return (" " + " ".join(values) + " ") if values else ""


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def paper_to_row(p: Paper, now: datetime) -> dict[str, Any]:
    return {
        "id": p.id,
        "arxiv_id": p.arxiv_id,
        "version": p.version,
        "doi": p.doi,
        "title": p.title,
        "title_key": title_key(p.title) if p.title.strip() else p.id,
        "abstract": p.abstract,
        "authors": json.dumps(
            [[a.name, a.affiliations] if a.affiliations else [a.name] for a in p.authors],
            ensure_ascii=False,
        ),
        "author_names": "; ".join(a.name for a in p.authors),
        "categories": _spaced(p.categories),
        "primary_category": p.primary_category,
        "published": _naive_utc(p.published),
        "updated": _naive_utc(p.updated),
        "links": json.dumps(p.links, ensure_ascii=False),
        "upvotes": p.upvotes,
        "comments": p.comments,
        "stars": p.stars,
        "citations": p.citations,
        "sources": _spaced(p.sources),
        "extra": json.dumps(p.extra, ensure_ascii=False, default=str),
        "content_hash": content_hash(p.title, p.abstract),
        "first_seen": _naive_utc(p.first_seen) or now,
        "last_seen": now,
    }


def row_to_paper(row: Any, versions: list[Version] | None = None) -> Paper:
    m = row._mapping
    return Paper(
        id=m["id"],
        title=m["title"],
        abstract=m["abstract"],
        authors=[Author(a[0], list(a[1]) if len(a) > 1 else []) for a in json.loads(m["authors"])],
        arxiv_id=m["arxiv_id"],
        version=m["version"],
        doi=m["doi"],
        categories=m["categories"].split(),
        primary_category=m["primary_category"],
        published=_aware(m["published"]),
        updated=_aware(m["updated"]),
        links=json.loads(m["links"]),
        upvotes=m["upvotes"],
        comments=m["comments"],
        stars=m["stars"],
        citations=m["citations"],
        sources=m["sources"].split(),
        versions=versions or [],
        extra=json.loads(m["extra"]),
        first_seen=_aware(m["first_seen"]),
    )


class SqlStorage:
    """Storage over SQLAlchemy Core. Subclasses provide full-text maintenance and search."""

    dialect_name = ""

    def __init__(self, url: str, engine: sa.Engine) -> None:
        self.url = url
        self.engine = engine
        try:
            with engine.begin() as conn:
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot open or migrate the database {url}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write_txn(self) -> Iterator[sa.Connection]:
        """A transaction that holds the write lock from its first statement (SQLite overrides
        this with BEGIN IMMEDIATE; PostgreSQL locks rows, so a plain transaction is enough)."""
        with self.engine.begin() as conn:
            yield conn

    def _insert_ignoring_conflicts(
        self,
        table: sa.Table,
        index_elements: list[str],
        index_where: sa.ColumnElement[bool] | None = None,
    ) -> Any:
        """``INSERT … ON CONFLICT (index_elements) [WHERE …] DO NOTHING`` for this dialect."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing(
                index_elements=index_elements, index_where=index_where
            )
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(
            index_elements=index_elements, index_where=index_where
        )

    # -- full-text hooks -------------------------------------------------------------------------
    def _fts_delete(self, conn: sa.Connection, pks: Sequence[int]) -> None:
        raise NotImplementedError

    def _fts_insert(self, conn: sa.Connection, ids: Sequence[str]) -> None:
        raise NotImplementedError

    def keyword_search(
        self,
        query: Query,
        flt: PaperFilter,
        *,
        limit: int = 20,
        after: Cursor | None = None,
        require_all: bool = False,
    ) -> list[KeywordHit]:
        raise NotImplementedError

    # -- papers ----------------------------------------------------------------------------------
    def find_related(self, batch: Sequence[Paper]) -> list[Paper]:
        ids = sorted({p.id for p in batch})
        dois = sorted({p.doi for p in batch if p.doi})
        keys = sorted({title_key(p.title) for p in batch if p.title.strip()})
        found: dict[int, Any] = {}
        with self.engine.connect() as conn:
            for col, values in (
                (papers.c.id, ids),
                (papers.c.doi, dois),
                (papers.c.title_key, keys),
            ):
                for chunk in _chunks(values):
                    for row in conn.execute(sa.select(papers).where(col.in_(chunk))):
                        found[row.pk] = row
            versions = self._versions(conn, list(found))
        return [row_to_paper(r, versions.get(pk)) for pk, r in found.items()]

    def _versions(self, conn: sa.Connection, pks: Sequence[int]) -> dict[int, list[Version]]:
        out: dict[int, list[Version]] = {}
        for chunk in _chunks(pks):
            q = (
                sa.select(paper_versions)
                .where(paper_versions.c.paper_pk.in_(chunk))
                .order_by(paper_versions.c.paper_pk, paper_versions.c.version)
            )
            for v in conn.execute(q):
                out.setdefault(v.paper_pk, []).append(Version(v.version, _aware(v.date), v.size))
        return out

    def write_papers(
        self,
        upserts: Sequence[Paper],
        deletes: Sequence[str] = (),
        *,
        source: str | None = None,
        checkpoint: dict[str, Any] | None = None,
        counts: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with self.engine.begin() as conn:
                self._write(conn, upserts, deletes, now)
                if source is not None:
                    self._record_source(conn, source, checkpoint, counts, now)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"writing {len(upserts)} papers failed: {exc}") from exc

    def _write(
        self, conn: sa.Connection, upserts: Sequence[Paper], deletes: Sequence[str], now: datetime
    ) -> None:
        gone: list[int] = []
        for chunk in _chunks(list(deletes)):
            gone += [
                r.pk for r in conn.execute(sa.select(papers.c.pk).where(papers.c.id.in_(chunk)))
            ]
        if gone:
            self._fts_delete(conn, gone)
            for chunk in _chunks(gone):
                conn.execute(sa.delete(paper_versions).where(paper_versions.c.paper_pk.in_(chunk)))
                conn.execute(sa.delete(embeddings).where(embeddings.c.paper_pk.in_(chunk)))
                conn.execute(sa.delete(papers).where(papers.c.pk.in_(chunk)))
        if not upserts:
            return
        ids = [p.id for p in upserts]
        existing: dict[str, int] = {}
        for chunk in _chunks(ids):
            q = sa.select(papers.c.id, papers.c.pk).where(papers.c.id.in_(chunk))
            existing.update({r.id: r.pk for r in conn.execute(q)})
        rows = [paper_to_row(p, now) for p in upserts]
        new_rows = [r for r in rows if r["id"] not in existing]
        # Keys of an UPDATE's parameters that name columns are SET too: leave id and first_seen
        # out so that an upsert never moves the paper's first sighting.
        old_rows = [
            {k: v for k, v in r.items() if k not in ("id", "first_seen")}
            | {"_pk": existing[r["id"]]}
            for r in rows
            if r["id"] in existing
        ]
        if old_rows:
            old_pks = [r["_pk"] for r in old_rows]
            self._fts_delete(conn, old_pks)
            for chunk in _chunks(old_pks):
                conn.execute(sa.delete(paper_versions).where(paper_versions.c.paper_pk.in_(chunk)))
            cols: dict[str, Any] = {
                c: sa.bindparam(c) for c in rows[0] if c not in ("id", "first_seen")
            }
            conn.execute(
                sa.update(papers).where(papers.c.pk == sa.bindparam("_pk")).values(cols),
                old_rows,
            )
        if new_rows:
            conn.execute(sa.insert(papers), new_rows)
        self._fts_insert(conn, ids)
        with_versions = [p for p in upserts if p.versions]
        if with_versions:
            pks = dict(existing)
            missing = [p.id for p in with_versions if p.id not in pks]
            for chunk in _chunks(missing):
                q = sa.select(papers.c.id, papers.c.pk).where(papers.c.id.in_(chunk))
                pks.update({r.id: r.pk for r in conn.execute(q)})
            conn.execute(
                sa.insert(paper_versions),
                [
                    {
                        "paper_pk": pks[p.id],
                        "version": v.version,
                        "date": _naive_utc(v.date),
                        "size": v.size,
                    }
                    for p in with_versions
                    for v in p.versions
                ],
            )

    def get_paper(self, paper_id: str) -> Paper | None:
        found = self.get_papers([paper_id])
        return found[0] if found else None

    def get_papers(self, paper_ids: Sequence[str]) -> list[Paper]:
        by_id: dict[str, Paper] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(paper_ids)):
                rows = list(conn.execute(sa.select(papers).where(papers.c.id.in_(chunk))))
                versions = self._versions(conn, [r.pk for r in rows])
                by_id.update({r.id: row_to_paper(r, versions.get(r.pk)) for r in rows})
        return [by_id[i] for i in paper_ids if i in by_id]

    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]:
        out: dict[int, Paper] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(pks)):
                rows = list(conn.execute(sa.select(papers).where(papers.c.pk.in_(chunk))))
                versions = self._versions(conn, [r.pk for r in rows])
                out.update({r.pk: row_to_paper(r, versions.get(r.pk)) for r in rows})
        return out

    def pks_for_ids(self, paper_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(paper_ids)):
                q = sa.select(papers.c.id, papers.c.pk).where(papers.c.id.in_(chunk))
                out.update({r.id: r.pk for r in conn.execute(q)})
        return out

    def _where(self, flt: PaperFilter) -> list[sa.ColumnElement[bool]]:
        c = papers.c
        conds: list[sa.ColumnElement[bool]] = []
        if flt.categories:
            conds.append(
                sa.or_(
                    *[
                        c.categories.like(f"% {cat}%" if "." not in cat else f"% {cat} %")
                        for cat in flt.categories
                    ]
                )
            )
        if flt.authors:
            conds.append(
                sa.or_(
                    *[
                        sa.func.lower(c.author_names).contains(a.lower(), autoescape=True)
                        for a in flt.authors
                    ]
                )
            )
        if flt.years:
            ranges = []
            for start, end in flt.years:
                parts = []
                if start is not None:
                    parts.append(c.published >= datetime(start, 1, 1))
                if end is not None:
                    parts.append(c.published < datetime(end + 1, 1, 1))
                ranges.append(sa.and_(c.published.is_not(None), *parts))
            conds.append(sa.or_(*ranges))
        if flt.since:
            conds.append(sa.func.coalesce(c.published, c.first_seen) >= _naive_utc(flt.since))
        if flt.published_from:
            conds.append(c.published >= _naive_utc(flt.published_from))
        if flt.published_to:
            conds.append(c.published < _naive_utc(flt.published_to))
        if flt.sources:
            conds.append(sa.or_(*[c.sources.like(f"% {s} %") for s in flt.sources]))
        if flt.ids:
            conds.append(c.id.in_(flt.ids))
        if flt.exclude is not None and flt.exclude.has_exclusions:
            conds.append(self._not_matching(flt.exclude))
        return conds

    def _not_matching(self, query: Query) -> sa.ColumnElement[bool]:
        raise NotImplementedError

    def count_papers(self, flt: PaperFilter | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(papers)
        if flt is not None:
            q = q.where(*self._where(flt))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def list_papers(
        self,
        flt: PaperFilter,
        *,
        sort: SortKey = "published",
        limit: int = 50,
        after: Cursor | None = None,
    ) -> list[tuple[Paper, Cursor]]:
        c = papers.c
        if sort == "upvotes":
            key: sa.ColumnElement[Any] = sa.func.coalesce(c.upvotes, 0)
        elif sort == "first_seen":
            key = c.first_seen
        else:
            key = sa.func.coalesce(c.published, c.first_seen)
        q = sa.select(papers, key.label("_key")).where(*self._where(flt))
        if after is not None:
            value: Any = after.value
            if sort != "upvotes" and isinstance(value, str):
                value = datetime.fromisoformat(value)
            q = q.where(sa.tuple_(key, c.pk) < sa.tuple_(sa.literal(value), sa.literal(after.pk)))
        q = q.order_by(key.desc(), c.pk.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = list(conn.execute(q))
            versions = self._versions(conn, [r.pk for r in rows])
        out = []
        for r in rows:
            k = r._key
            if isinstance(k, datetime):
                k = k.isoformat(sep=" ")
            out.append((row_to_paper(r, versions.get(r.pk)), Cursor(k, r.pk)))
        return out

    def iter_papers(self, batch_size: int = 1000) -> Iterator[Paper]:
        last = 0
        while True:
            with self.engine.connect() as conn:
                q = (
                    sa.select(papers)
                    .where(papers.c.pk > last)
                    .order_by(papers.c.pk)
                    .limit(batch_size)
                )
                rows = list(conn.execute(q))
                versions = self._versions(conn, [r.pk for r in rows])
            if not rows:
                return
            for r in rows:
                yield row_to_paper(r, versions.get(r.pk))
            last = rows[-1].pk

    def papers_after(self, pk: int, limit: int = 1000) -> list[tuple[int, Paper]]:
        with self.engine.connect() as conn:
            q = sa.select(papers).where(papers.c.pk > pk).order_by(papers.c.pk).limit(limit)
            rows = list(conn.execute(q))
            versions = self._versions(conn, [r.pk for r in rows])
        return [(r.pk, row_to_paper(r, versions.get(r.pk))) for r in rows]

    def ids_for_pks(self, pks: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(pks)):
                q = sa.select(papers.c.pk, papers.c.id).where(papers.c.pk.in_(chunk))
                out.update({r.pk: r.id for r in conn.execute(q)})
        return out

    def filter_pks(self, flt: PaperFilter, pks: Sequence[int]) -> set[int]:
        if flt.is_empty():
            return set(pks)
        out: set[int] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(list(pks)):
                q = sa.select(papers.c.pk).where(papers.c.pk.in_(chunk), *self._where(flt))
                out.update(r.pk for r in conn.execute(q))
        return out

    def stats(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one()
            with_abstract = conn.execute(
                sa.select(sa.func.count()).select_from(papers).where(papers.c.abstract != "")
            ).scalar_one()
            newest = conn.execute(sa.select(sa.func.max(papers.c.published))).scalar_one()
            last_seen = conn.execute(sa.select(sa.func.max(papers.c.first_seen))).scalar_one()
            vectors = conn.execute(sa.select(sa.func.count()).select_from(embeddings)).scalar_one()
            per_source: dict[str, int] = {}
            for st in conn.execute(sa.select(source_state.c.source, source_state.c.seen)):
                per_source[st.source] = st.seen
        return {
            "papers": int(n),
            "with_abstract": int(with_abstract),
            "embeddings": int(vectors),
            "newest_published": newest.isoformat() if newest else None,
            "last_ingest": last_seen.isoformat() if last_seen else None,
            "backend": self.dialect_name,
            "sources": per_source,
        }

    # -- sources ---------------------------------------------------------------------------------
    def _record_source(
        self,
        conn: sa.Connection,
        source: str,
        checkpoint: dict[str, Any] | None,
        counts: tuple[int, int, int, int],
        now: datetime,
    ) -> None:
        seen, new, updated, rejected = counts
        row = conn.execute(sa.select(source_state).where(source_state.c.source == source)).first()
        if row is None:
            conn.execute(
                sa.insert(source_state).values(
                    source=source,
                    checkpoint=json.dumps(checkpoint or {}),
                    last_run=now,
                    seen=seen,
                    new=new,
                    updated=updated,
                    rejected=rejected,
                )
            )
            return
        values: dict[str, Any] = {
            "last_run": now,
            "seen": row.seen + seen,
            "new": row.new + new,
            "updated": row.updated + updated,
            "rejected": row.rejected + rejected,
        }
        if checkpoint is not None:
            values["checkpoint"] = json.dumps(checkpoint)
        conn.execute(sa.update(source_state).where(source_state.c.source == source).values(values))

    def _state(self, row: Any) -> SourceState:
        return SourceState(
            source=row.source,
            checkpoint=json.loads(row.checkpoint),
            last_run=_aware(row.last_run),
            last_error=row.last_error,
            seen=row.seen,
            new=row.new,
            updated=row.updated,
            rejected=row.rejected,
        )

    def source_state(self, source: str) -> SourceState | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(source_state).where(source_state.c.source == source)
            ).first()
        return self._state(row) if row is not None else None

    def source_states(self) -> list[SourceState]:
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(source_state).order_by(source_state.c.source)))
        return [self._state(r) for r in rows]

    def record_source_error(self, source: str, error: str | None) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            self._record_source(conn, source, None, (0, 0, 0, 0), now)
            conn.execute(
                sa.update(source_state)
                .where(source_state.c.source == source)
                .values(last_error=error)
            )

    def restore_source_states(self, states: Sequence[SourceState]) -> None:
        if not states:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(source_state).where(source_state.c.source.in_([s.source for s in states]))
            )
            conn.execute(
                sa.insert(source_state),
                [
                    {
                        "source": s.source,
                        "checkpoint": json.dumps(s.checkpoint),
                        "last_run": _naive_utc(s.last_run),
                        "last_error": s.last_error,
                        "seen": s.seen,
                        "new": s.new,
                        "updated": s.updated,
                        "rejected": s.rejected,
                    }
                    for s in states
                ],
            )

    # -- embeddings ------------------------------------------------------------------------------
    def embedding_backlog(self, model: str, limit: int) -> list[tuple[int, str, str]]:
        e = embeddings
        q = (
            sa.select(papers.c.pk, papers.c.content_hash, papers.c.title, papers.c.abstract)
            .select_from(
                papers.outerjoin(e, sa.and_(e.c.paper_pk == papers.c.pk, e.c.model == model))
            )
            .where(sa.or_(e.c.paper_pk.is_(None), e.c.content_hash != papers.c.content_hash))
            .order_by(papers.c.pk)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                (r.pk, r.content_hash, paper_text(r.title, r.abstract)) for r in conn.execute(q)
            ]

    def write_embeddings(self, model: str, rows: Sequence[tuple[int, str, bytes]]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            for chunk in _chunks([r[0] for r in rows]):
                conn.execute(
                    sa.delete(embeddings).where(
                        embeddings.c.model == model, embeddings.c.paper_pk.in_(chunk)
                    )
                )
            conn.execute(
                sa.insert(embeddings),
                [
                    {"paper_pk": pk, "model": model, "content_hash": h, "vector": v}
                    for pk, h, v in rows
                ],
            )

    def iter_embeddings(
        self, model: str, batch_size: int = 10000, *, after: int = 0
    ) -> Iterator[list[tuple[int, bytes]]]:
        last = after
        while True:
            q = (
                sa.select(embeddings.c.paper_pk, embeddings.c.vector)
                .where(embeddings.c.model == model, embeddings.c.paper_pk > last)
                .order_by(embeddings.c.paper_pk)
                .limit(batch_size)
            )
            with self.engine.connect() as conn:
                rows = [(r.paper_pk, r.vector) for r in conn.execute(q)]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def embeddings_for(self, model: str, pks: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(pks)):
                q = sa.select(embeddings.c.paper_pk, embeddings.c.vector).where(
                    embeddings.c.model == model, embeddings.c.paper_pk.in_(chunk)
                )
                out.update((r.paper_pk, bytes(r.vector)) for r in conn.execute(q))
        return out

    def count_embeddings(self, model: str) -> int:
        q = sa.select(sa.func.count()).select_from(embeddings).where(embeddings.c.model == model)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def embedding_models(self) -> list[str]:
        with self.engine.connect() as conn:
            q = sa.select(embeddings.c.model).distinct().order_by(embeddings.c.model)
            return [r.model for r in conn.execute(q)]

    def nearest_embeddings(
        self, model: str, vector: bytes, limit: int, flt: PaperFilter | None = None
    ) -> list[tuple[int, float]]:
        """Exact cosine search by a scan of every vector (fine up to ~10^5 papers)."""
        query = np.frombuffer(vector, dtype="<f4").astype(np.float32)
        norm = float(np.linalg.norm(query))
        if norm == 0.0 or limit <= 0:
            return []
        query = query / norm
        best: list[tuple[int, float]] = []
        for batch in self.iter_embeddings(model):
            pks = np.fromiter((pk for pk, _ in batch), dtype=np.int64, count=len(batch))
            mat = np.frombuffer(b"".join(v for _, v in batch), dtype="<f4").reshape(len(batch), -1)
            if mat.shape[1] != query.shape[0]:
                raise StorageError(
                    f"vectors of model {model!r} have {mat.shape[1]} dimensions, the query "
                    f"{query.shape[0]}: embed the query with the same model"
                )
            norms = np.linalg.norm(mat, axis=1)
            sims = (mat @ query) / np.where(norms == 0, 1.0, norms)
            if flt is not None and not flt.is_empty():
                keep = self.filter_pks(flt, pks.tolist())
                mask = np.fromiter((int(p) in keep for p in pks), dtype=bool, count=len(pks))
                pks, sims = pks[mask], sims[mask]
            top = np.argsort(-sims, kind="stable")[:limit]
            best += [(int(pks[i]), float(sims[i])) for i in top]
            best.sort(key=lambda t: (-t[1], t[0]))
            del best[limit:]
        return best

    # -- work distribution -----------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        run_after: datetime | None = None,
        max_attempts: int = 5,
    ) -> int:
        now = _utcnow()
        values = {
            "kind": kind,
            "key": key,
            "payload": json.dumps(payload or {}, ensure_ascii=False, default=str),
            "state": "queued",
            "run_after": _naive_utc(run_after) or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created": now,
        }
        if key is None:
            with self.engine.begin() as conn:
                return int(
                    conn.execute(sa.insert(jobs).values(values).returning(jobs.c.id)).scalar_one()
                )
        pending = jobs.c.state.in_(["queued", "running"])
        stmt = (
            self._insert_ignoring_conflicts(jobs, ["key"], pending)
            .values(values)
            .returning(jobs.c.id)
        )
        for _ in range(5):  # the pending job may finish between the insert and the look-up
            with self._write_txn() as conn:
                new_id = conn.execute(stmt).scalar()
                if new_id is not None:
                    return int(new_id)
                old_id = conn.execute(
                    sa.select(jobs.c.id).where(jobs.c.key == key, pending)
                ).scalar()
                if old_id is not None:
                    return int(old_id)
        raise StorageError(f"could not enqueue job {kind!r} with key {key!r}: try again")

    def claim(
        self, kinds: Sequence[str], worker_id: str, lease: float, *, limit: int = 1
    ) -> list[Job]:
        if not kinds or limit <= 0:
            return []
        now = _utcnow()
        until = now + timedelta(seconds=lease)
        j = jobs.c
        expired = sa.and_(j.state == "running", j.locked_until < now)
        due = sa.or_(sa.and_(j.state == "queued", j.run_after <= now), expired)
        pick = (
            sa.select(j.id)
            .where(j.kind.in_(list(kinds)), due, j.attempts < j.max_attempts)
            .order_by(j.run_after, j.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        take = (
            sa.update(jobs)
            .where(j.id.in_(pick.scalar_subquery()))
            .values(
                state="running",
                locked_by=worker_id,
                locked_until=until,
                attempts=j.attempts + 1,
            )
            .returning(j.id, j.kind, j.key, j.payload, j.attempts, j.max_attempts)
        )
        with self._write_txn() as conn:
            # Jobs whose worker died on their last attempt: failed for good, not re-run forever.
            conn.execute(
                sa.update(jobs)
                .where(j.kind.in_(list(kinds)), expired, j.attempts >= j.max_attempts)
                .values(
                    state="failed",
                    finished=now,
                    locked_by=None,
                    locked_until=None,
                    last_error="lease expired on the last attempt (the worker stopped)",
                )
            )
            rows = list(conn.execute(take))
        aware_until = until.replace(tzinfo=UTC)
        out = [
            Job(r.id, r.kind, json.loads(r.payload), r.key, r.attempts, r.max_attempts, aware_until)
            for r in rows
        ]
        return sorted(out, key=lambda job: job.id)

    def _held(self, job_id: int, worker_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            jobs.c.id == job_id, jobs.c.state == "running", jobs.c.locked_by == worker_id
        )

    def extend_lease(self, job_id: int, worker_id: str, lease: float) -> bool:
        now = _utcnow()
        with self._write_txn() as conn:
            res = conn.execute(
                sa.update(jobs)
                .where(self._held(job_id, worker_id), jobs.c.locked_until >= now)
                .values(locked_until=now + timedelta(seconds=lease))
            )
            return res.rowcount == 1

    def complete(self, job_id: int, worker_id: str) -> bool:
        with self._write_txn() as conn:
            res = conn.execute(
                sa.update(jobs)
                .where(self._held(job_id, worker_id))
                .values(state="done", finished=_utcnow(), locked_by=None, locked_until=None)
            )
            return res.rowcount == 1

    def fail(self, job_id: int, worker_id: str, error: str, *, backoff: float = 30.0) -> bool:
        now = _utcnow()
        with self._write_txn() as conn:
            row = conn.execute(
                sa.select(jobs.c.attempts, jobs.c.max_attempts).where(self._held(job_id, worker_id))
            ).first()
            if row is None:
                return False
            if row.attempts >= row.max_attempts:
                values: dict[str, Any] = {"state": "failed", "finished": now}
            else:
                delay = min(backoff * 2 ** max(row.attempts - 1, 0), 86400.0)
                values = {"state": "queued", "run_after": now + timedelta(seconds=delay)}
            res = conn.execute(
                sa.update(jobs)
                .where(self._held(job_id, worker_id))
                .values(values | {"locked_by": None, "locked_until": None, "last_error": error})
            )
            return res.rowcount == 1

    def job_counts(self) -> dict[str, int]:
        out = dict.fromkeys(("queued", "running", "done", "failed"), 0)
        with self.engine.connect() as conn:
            q = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
            out.update({r[0]: int(r[1]) for r in conn.execute(q)})
        return out

    def purge_jobs(self, finished_before: datetime) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.delete(jobs).where(
                    jobs.c.state.in_(["done", "failed"]),
                    jobs.c.finished < _naive_utc(finished_before),
                )
            )
            return int(res.rowcount)

    def claim_schedule(self, name: str, now: datetime, next_run: datetime, worker_id: str) -> bool:
        at = _naive_utc(now)
        with self._write_txn() as conn:
            conn.execute(
                self._insert_ignoring_conflicts(schedules, ["name"]).values(name=name, next_run=at)
            )
            res = conn.execute(
                sa.update(schedules)
                .where(schedules.c.name == name, schedules.c.next_run <= at)
                .values(next_run=_naive_utc(next_run), last_run=at, last_worker=worker_id)
            )
            return res.rowcount == 1

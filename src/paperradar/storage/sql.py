"""SQL shared by every backend (SQLAlchemy Core). Backends add full-text search and pragmas."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from paperradar.errors import StorageError
from paperradar.model import Author, Paper, Version, title_key
from paperradar.querylang import Query
from paperradar.storage.base import (
    Cursor,
    DigestClaim,
    Interests,
    Job,
    KeywordHit,
    PaperFilter,
    SortKey,
    SourceState,
    Subscription,
)
from paperradar.storage.schema import (
    digest_ledger,
    digest_sent,
    embeddings,
    feedback,
    jobs,
    paper_events,
    paper_versions,
    papers,
    schedules,
    source_state,
    subscriptions,
)

__all__ = ["SqlStorage", "content_hash", "paper_text"]

MIGRATIONS = Path(__file__).parent / "migrations"
CHUNK = 4000  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits
LISTING_DEPTH = 1000  # the default keyword_listing orders this many best matches by date


def paper_text(title: str, abstract: str) -> str:
    """The text that is embedded for a paper."""
    return f"{title}. {abstract}".strip() if abstract else title


def content_hash(title: str, abstract: str) -> str:
    return hashlib.sha1(paper_text(title, abstract).encode()).hexdigest()[:20]


def _naive_utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    if dt.tzinfo is UTC:  # what the parsers give: no conversion
        return dt.replace(tzinfo=None)
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


# The columns of ``papers`` a write sets, in table order (``pk`` is the database's).
ROW_COLUMNS: tuple[str, ...] = tuple(c.name for c in papers.columns if c.name != "pk")
_DATETIME_COLUMNS = tuple(
    i for i, c in enumerate(ROW_COLUMNS) if c in ("published", "updated", "first_seen", "last_seen")
)


# json.dumps(value, ensure_ascii=False[, default=str]) without building an encoder per call
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_ENCODE_ANY = json.JSONEncoder(ensure_ascii=False, default=str).encode
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\\"]')


def _authors_json(authors: list[Author], names: list[str]) -> str:
    """``json.dumps`` of ``[[name], [name, affiliations], …]``; built directly in the common case
    (no affiliations, nothing to escape), with the same output."""
    if not authors:
        return "[]"
    if any(a.affiliations for a in authors) or _NEEDS_ESCAPE.search("".join(names)):
        return _ENCODE([[a.name, a.affiliations] if a.affiliations else [a.name] for a in authors])
    return '[["' + '"], ["'.join(names) + '"]]'


def paper_row(p: Paper, now: datetime) -> tuple[Any, ...]:
    """The values of ``p``'s row, in ``ROW_COLUMNS`` order (datetimes naive UTC)."""
    names = [a.name for a in p.authors]
    return (
        p.id,
        p.arxiv_id,
        p.version,
        p.doi,
        p.title,
        title_key(p.title) if p.title.strip() else p.id,
        p.abstract,
        _authors_json(p.authors, names),
        "; ".join(names),
        _spaced(p.categories),
        p.primary_category,
        _naive_utc(p.published),
        _naive_utc(p.updated),
        _ENCODE(p.links) if p.links else "{}",
        p.upvotes,
        p.comments,
        p.stars,
        p.citations,
        _spaced(p.sources),
        _ENCODE_ANY(p.extra) if p.extra else "{}",
        content_hash(p.title, p.abstract),
        _naive_utc(p.first_seen) or now,
        now,
    )


def paper_to_row(p: Paper, now: datetime) -> dict[str, Any]:
    return dict(zip(ROW_COLUMNS, paper_row(p, now), strict=True))


def _sqlite_datetime(dt: datetime | None) -> str | None:
    """A naive datetime as SQLAlchemy's SQLite dialect stores it (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return None if dt is None else dt.isoformat(" ", "microseconds")


# Bulk rows repeat their datetimes (a batch's "now", the days papers were published): each is
# formatted once.
_stored_datetime = functools.lru_cache(maxsize=1 << 14)(_sqlite_datetime)


def _from_sqlite_datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def row_to_paper(row: Any, versions: list[Version] | None = None) -> Paper:
    return mapping_to_paper(row._mapping, versions)


def _loads(text: str) -> Any:
    """``json.loads`` of a stored JSON column: the empty forms without parsing, orjson (several
    times faster) for the rest, ``json`` for what orjson refuses (NaN, huge integers)."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def mapping_to_paper(m: Any, versions: list[Version] | None = None) -> Paper:
    return Paper(
        id=m["id"],
        title=m["title"],
        abstract=m["abstract"],
        authors=[Author(a[0], list(a[1]) if len(a) > 1 else []) for a in _loads(m["authors"])],
        arxiv_id=m["arxiv_id"],
        version=m["version"],
        doi=m["doi"],
        categories=m["categories"].split(),
        primary_category=m["primary_category"],
        published=_aware(m["published"]),
        updated=_aware(m["updated"]),
        links=_loads(m["links"]),
        upvotes=m["upvotes"],
        comments=m["comments"],
        stars=m["stars"],
        citations=m["citations"],
        sources=m["sources"].split(),
        versions=versions or [],
        extra=_loads(m["extra"]),
        first_seen=_aware(m["first_seen"]),
    )


_INSERT_SQL: dict[tuple[str, int, int], str] = {}

# Every statement of the bulk path is one step for many rows: the driver releases the GIL for
# each step, so a parse thread running beside the writer (sources.prefetched) would make a
# per-row executemany or fetchall wait for the GIL once per row. Reads come back as one JSON
# document (json_group_array), updates go in as UPDATE … FROM (VALUES …).


def _json_list(values: Sequence[Any]) -> str:
    return orjson.dumps(list(values)).decode()


def _json_rows(
    db: sqlite3.Connection, columns: Sequence[str], source: str, values: Sequence[Any]
) -> list[list[Any]]:
    """``SELECT columns FROM source`` (one ``?`` in source: ``values`` as a JSON list), fetched
    in one step as a JSON array of arrays."""
    (doc,) = db.execute(
        f"SELECT json_group_array(json_array({', '.join(columns)})) FROM {source}",
        (_json_list(values),),
    ).fetchone()
    rows: list[list[Any]] = orjson.loads(doc)
    return rows


# The read path of ``_papers_sqlite``: the columns ``mapping_to_paper`` reads, then the paper's
# versions as one JSON array of [version, date, size] in version order.
_READ_NAMES: tuple[str, ...] = (
    "pk",
    *(
        c
        for c in ROW_COLUMNS
        if c not in ("title_key", "author_names", "content_hash", "last_seen")
    ),
)
_READ_DATETIMES = tuple(
    i for i, c in enumerate(_READ_NAMES) if c in ("published", "updated", "first_seen")
)
_PAPERS_SQL = {
    col: f"SELECT {', '.join(_READ_NAMES)}, (SELECT json_group_array(json_array(version, date, "
    "size)) FROM paper_versions WHERE paper_pk = papers.pk) "
    f"FROM papers WHERE {col} IN (SELECT value FROM json_each(?))"
    for col in ("pk", "id")
}


def _per_statement(db: sqlite3.Connection, width: int) -> int:
    return max(1, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)


def _update_many(
    db: sqlite3.Connection, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """UPDATE papers SET ``columns`` = the row's values WHERE pk = its last value."""
    width = len(columns) + 1
    sets = ", ".join(f"{c} = v.column{i}" for i, c in enumerate(columns, 1))
    one = "(" + ",".join("?" * width) + ")"
    per = _per_statement(db, width)
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        db.execute(
            f"UPDATE papers SET {sets} FROM (VALUES {','.join([one] * len(part))}) AS v "
            f"WHERE papers.pk = v.column{width}",
            [v for r in part for v in r],
        )


def _insert_many(
    db: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT ``rows`` in statements of as many rows as SQLite's parameter limit allows."""
    width = len(columns)
    per = _per_statement(db, width)
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        key = (table, width, len(part))
        sql = _INSERT_SQL.get(key)
        if sql is None:
            one = "(" + ",".join("?" * width) + ")"
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ",".join(
                [one] * len(part)
            )
            if len(part) == per:  # the full-size statement recurs; remainders vary
                _INSERT_SQL[key] = sql
        db.execute(sql, [v for r in part for v in r])


class SqlStorage:
    """Storage over SQLAlchemy Core. Subclasses provide full-text maintenance and search."""

    dialect_name = ""

    def __init__(self, url: str, engine: sa.Engine) -> None:
        self.url = url
        self.engine = engine
        try:
            # One process migrates at a time (several workers may start on an empty database):
            # SQLite's write lock from BEGIN IMMEDIATE, PostgreSQL's transaction advisory lock.
            with self._write_txn() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7262001)"))
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.SQLAlchemyError as exc:
            shown = sa.make_url(url).render_as_string(hide_password=True)
            why = getattr(exc, "orig", None) or exc  # the driver's words, without SQLAlchemy's
            raise StorageError(f"cannot open or migrate the database {shown}: {why}") from exc

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

    def keyword_listing(
        self,
        query: Query,
        flt: PaperFilter,
        *,
        limit: int = 50,
        after: Cursor | None = None,
    ) -> list[tuple[Paper, Cursor]]:
        """Approximate: the best ``LISTING_DEPTH`` matches by BM25, newest first (a backend
        whose index can order its matches by date overrides this with the exact listing)."""
        hits = self.keyword_search(query, flt, limit=LISTING_DEPTH, require_all=True)
        if not hits:
            return []
        return self._list_papers(
            flt,
            sort="published",
            limit=limit,
            after=after,
            among=papers.c.pk.in_([h.pk for h in hits]),
        )

    # -- papers ----------------------------------------------------------------------------------
    def find_related(self, batch: Sequence[Paper]) -> list[Paper]:
        """The stored papers sharing an id, DOI or title key with ``batch``: those matching by
        id first, then by DOI, then by title key, each group in ``pk`` order."""
        ids = sorted({p.id for p in batch})
        dois = sorted({p.doi for p in batch if p.doi})
        keys = sorted({title_key(p.title) for p in batch if p.title.strip()})
        with self.engine.connect() as conn:
            if self._bulk_sqlite(conn):
                return self._find_related_sqlite(
                    conn, (("id", ids), ("doi", dois), ("title_key", keys))
                )
            found: dict[int, Any] = {}
            for col, values in (
                (papers.c.id, ids),
                (papers.c.doi, dois),
                (papers.c.title_key, keys),
            ):
                group: dict[int, Any] = {}
                for chunk in _chunks(values):
                    group.update(
                        (r.pk, r) for r in conn.execute(sa.select(papers).where(col.in_(chunk)))
                    )
                for pk in sorted(group):
                    found.setdefault(pk, group[pk])
            versions = self._versions(conn, list(found))
        return [row_to_paper(r, versions.get(pk)) for pk, r in found.items()]

    # -- the SQLite bulk path ------------------------------------------------------------------
    # Bulk ingest spends its time per row: SQLAlchemy Core's statement compilation, parameter
    # processing and IN-list expansion cost more than SQLite's own work. On SQLite, papers are
    # therefore looked up and written through the driver connection of the same transaction:
    # id lists go in as one JSON parameter (``json_each``), rows as multi-row VALUES (one
    # statement per ~1,300 rows, during which the driver releases the GIL), datetimes in the
    # text form SQLAlchemy stores. The database that results is the same as the Core path's
    # (tests/storage/test_bulk_path.py writes both ways and compares).

    #: Off: every dialect takes the SQLAlchemy Core path (the tests compare the two).
    bulk_sqlite = True

    def _bulk_sqlite(self, conn: sa.Connection) -> bool:
        return self.bulk_sqlite and conn.dialect.name == "sqlite"

    @staticmethod
    def _driver(conn: sa.Connection) -> sqlite3.Connection:
        dbapi = conn.connection.driver_connection
        assert isinstance(dbapi, sqlite3.Connection)
        return dbapi

    def _find_related_sqlite(
        self, conn: sa.Connection, lookups: Sequence[tuple[str, list[str]]]
    ) -> list[Paper]:
        db = self._driver(conn)
        names = ("pk", *ROW_COLUMNS)
        found: dict[int, list[Any]] = {}
        for col, values in lookups:
            if values:
                rows = _json_rows(
                    db, names, f"papers WHERE {col} IN (SELECT value FROM json_each(?))", values
                )
                for r in sorted(rows, key=lambda r: r[0]):
                    found.setdefault(r[0], r)
        if not found:
            return []
        versions: dict[int, list[Version]] = {}
        for pk, version, date, size in sorted(
            _json_rows(
                db,
                ("paper_pk", "version", "date", "size"),
                "paper_versions WHERE paper_pk IN (SELECT value FROM json_each(?))",
                list(found),
            ),
            key=lambda v: (v[0], v[1]),
        ):
            versions.setdefault(pk, []).append(
                Version(version, _aware(_from_sqlite_datetime(date)), size)
            )
        out = []
        for pk, r in found.items():
            m = dict(zip(names, r, strict=True))
            for col in ("published", "updated", "first_seen"):
                m[col] = _from_sqlite_datetime(m[col])
            out.append(mapping_to_paper(m, versions.get(pk)))
        return out

    def _papers_sqlite(
        self, conn: sa.Connection, col: str, values: Sequence[Any]
    ) -> list[tuple[int, Paper]]:
        """(pk, paper) of the rows whose ``col`` is one of ``values``, versions included, in one
        statement through the driver: the read of a search page or a paper page, where
        SQLAlchemy's statement building and result processing cost more than SQLite's work."""
        if not values:
            return []
        rows = self._driver(conn).execute(_PAPERS_SQL[col], (_json_list(values),)).fetchall()
        out = []
        for r in rows:
            m = dict(zip(_READ_NAMES, r, strict=False))
            for i in _READ_DATETIMES:
                m[_READ_NAMES[i]] = _from_sqlite_datetime(r[i])
            versions = (
                [
                    Version(v, _aware(_from_sqlite_datetime(d)), size)
                    for v, d, size in sorted(_loads(r[-1]), key=lambda t: t[0])
                ]
                if r[-1] != "[]"
                else None
            )
            out.append((r[0], mapping_to_paper(m, versions)))
        return out

    def _write_sqlite(self, conn: sa.Connection, upserts: Sequence[Paper], now: datetime) -> None:
        """``_write`` for the upserts, on SQLite, through the driver connection (see above)."""
        db = self._driver(conn)
        ids = [p.id for p in upserts]
        (found,) = db.execute(
            "SELECT json_group_object(id, pk) FROM papers "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (_json_list(ids),),
        ).fetchone()
        existing: dict[str, int] = orjson.loads(found)
        rows = []
        for p in upserts:
            row = list(paper_row(p, now))
            for i in _DATETIME_COLUMNS:
                row[i] = _stored_datetime(row[i])
            rows.append(row)
        pks = dict(existing)
        old_rows = [(*r[1:21], r[22], existing[r[0]]) for r in rows if r[0] in existing]
        if old_rows:
            old_pks = [r[-1] for r in old_rows]
            self._fts_delete(conn, old_pks)
            db.execute(
                "DELETE FROM paper_versions WHERE paper_pk IN (SELECT value FROM json_each(?))",
                (_json_list(old_pks),),
            )
            # every column but id and first_seen: an upsert never moves the first sighting
            _update_many(db, [c for c in ROW_COLUMNS if c not in ("id", "first_seen")], old_rows)
        new_rows = [r for r in rows if r[0] not in existing]
        if new_rows:
            # the pks SQLite itself would give (max + 1, in order), so versions need no lookup
            top = db.execute("SELECT max(pk) FROM papers").fetchone()[0] or 0
            for r in new_rows:
                top += 1
                pks[r[0]] = top
                r.insert(0, top)
            _insert_many(db, "papers", ("pk", *ROW_COLUMNS), new_rows)
        self._fts_insert(conn, ids)
        versions = [
            (pks[p.id], v.version, _sqlite_datetime(_naive_utc(v.date)), v.size)
            for p in upserts
            for v in p.versions
        ]
        if versions:
            _insert_many(db, "paper_versions", ("paper_pk", "version", "date", "size"), versions)

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
            # The write lock from the start (SQLite: BEGIN IMMEDIATE): the new rows' pks are
            # max(pk) + 1 and their ids were looked up first; another writer in between made
            # "UNIQUE constraint failed: papers.pk" (two workers ingesting at once).
            with self._write_txn() as conn:
                self._write(conn, upserts, deletes, now)
                if source is not None:
                    self._record_source(conn, source, checkpoint, counts, now)
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
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
        if self._bulk_sqlite(conn):
            self._write_sqlite(conn, upserts, now)
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
            if self._bulk_sqlite(conn):
                by_id = {p.id: p for _, p in self._papers_sqlite(conn, "id", paper_ids)}
                return [by_id[i] for i in paper_ids if i in by_id]
            for chunk in _chunks(list(paper_ids)):
                rows = list(conn.execute(sa.select(papers).where(papers.c.id.in_(chunk))))
                versions = self._versions(conn, [r.pk for r in rows])
                by_id.update({r.id: row_to_paper(r, versions.get(r.pk)) for r in rows})
        return [by_id[i] for i in paper_ids if i in by_id]

    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]:
        out: dict[int, Paper] = {}
        with self.engine.connect() as conn:
            if self._bulk_sqlite(conn):
                return dict(self._papers_sqlite(conn, "pk", pks))
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
            # "cs.LG": that category; "cs": the archive (cs.LG, cs.CV, … and "cs" itself), on a
            # category boundary: not "csX" (PostgreSQL's search index keys them the same way)
            likes = [f"% {cat} %" for cat in flt.categories]
            likes += [f"% {cat}.%" for cat in flt.categories if "." not in cat]
            conds.append(sa.or_(*[c.categories.like(p) for p in likes]))
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
        return self._list_papers(flt, sort=sort, limit=limit, after=after)

    def _list_papers(
        self,
        flt: PaperFilter,
        *,
        sort: SortKey,
        limit: int,
        after: Cursor | None,
        among: sa.ColumnElement[bool] | None = None,
    ) -> list[tuple[Paper, Cursor]]:
        """``list_papers``, of the papers that also satisfy ``among`` when given."""
        c = papers.c
        if sort == "upvotes":
            # a literal 0 (not a bound parameter) so the expression index of migration 0005 matches
            key: sa.ColumnElement[Any] = sa.func.coalesce(c.upvotes, sa.literal_column("0"))
        elif sort == "first_seen":
            key = c.first_seen
        else:
            key = sa.func.coalesce(c.published, c.first_seen)
        # The page's (key, pk) first, then its rows: when a filter leaves many rows to sort (a day
        # of papers by upvotes), sorting narrow pairs is several times cheaper than whole rows.
        q = sa.select(c.pk, key.label("_key")).where(*self._where(flt))
        if among is not None:
            q = q.where(among)
        if after is not None:
            value: Any = after.value
            if sort != "upvotes" and isinstance(value, str):
                value = datetime.fromisoformat(value)
            q = q.where(sa.tuple_(key, c.pk) < sa.tuple_(sa.literal(value), sa.literal(after.pk)))
        q = q.order_by(key.desc(), c.pk.desc()).limit(limit)
        with self.engine.connect() as conn:
            keys = list(conn.execute(q))
            pks = [k.pk for k in keys]
            if self._bulk_sqlite(conn):
                found = dict(self._papers_sqlite(conn, "pk", pks))
            else:
                page = sa.select(papers).where(c.pk.in_(sa.bindparam("pks", expanding=True)))
                rows = {r.pk: r for r in conn.execute(page, {"pks": pks})}
                versions = self._versions(conn, pks)
                found = {pk: row_to_paper(r, versions.get(pk)) for pk, r in rows.items()}
        out = []
        for kr in keys:
            paper = found.get(kr.pk)
            if paper is None:  # deleted in between
                continue
            k = kr._key
            if isinstance(k, datetime):
                k = k.isoformat(sep=" ")
            out.append((paper, Cursor(k, kr.pk)))
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
    @staticmethod
    def _backlog(model: str, *cols: Any) -> Any:
        e = embeddings
        return (
            sa.select(*cols)
            .select_from(
                papers.outerjoin(e, sa.and_(e.c.paper_pk == papers.c.pk, e.c.model == model))
            )
            .where(sa.or_(e.c.paper_pk.is_(None), e.c.content_hash != papers.c.content_hash))
        )

    def embedding_backlog(
        self, model: str, limit: int, *, pk_from: int = 0, pk_to: int | None = None
    ) -> list[tuple[int, str, str]]:
        q = self._backlog(
            model, papers.c.pk, papers.c.content_hash, papers.c.title, papers.c.abstract
        )
        if pk_from:
            q = q.where(papers.c.pk >= pk_from)
        if pk_to is not None:
            q = q.where(papers.c.pk < pk_to)
        q = q.order_by(papers.c.pk).limit(limit)
        with self.engine.connect() as conn:
            return [
                (r.pk, r.content_hash, paper_text(r.title, r.abstract)) for r in conn.execute(q)
            ]

    def embedding_backlog_blocks(self, model: str, block: int) -> list[int]:
        number = (papers.c.pk // max(1, block)).label("block")
        q = self._backlog(model, number).group_by(number).order_by(number)
        with self.engine.connect() as conn:
            return [int(r.block) for r in conn.execute(q)]

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
            if self._bulk_sqlite(conn):  # a search's re-rank: one driver statement, no Core
                rows = self._driver(conn).execute(
                    "SELECT paper_pk, vector FROM embeddings WHERE model = ? "
                    "AND paper_pk IN (SELECT value FROM json_each(?))",
                    (model, _json_list(list(pks))),
                )
                return {int(pk): bytes(vector) for pk, vector in rows}
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

    # -- subscriptions and digests ---------------------------------------------------------------
    def _subscription(self, row: Any) -> Subscription:
        return Subscription(
            id=row.id,
            email=row.email,
            status=row.status,
            interests=Interests.from_dict(json.loads(row.interests)),
            frequency=row.frequency,
            send_hour=row.send_hour,
            timezone=row.timezone,
            max_items=row.max_items,
            weekends=bool(row.weekends),
            created=_aware(row.created),
            confirmed=_aware(row.confirmed),
            mailed=_aware(row.mailed),
            last_digest=_aware(row.last_digest),
            failures=row.failures,
            last_error=row.last_error,
        )

    def save_subscription(self, sub: Subscription) -> Subscription:
        now = _utcnow()
        values: dict[str, Any] = {
            "email": sub.email.strip().lower(),
            "status": sub.status,
            "interests": json.dumps(sub.interests.to_dict(), ensure_ascii=False),
            "frequency": sub.frequency,
            "send_hour": sub.send_hour,
            "timezone": sub.timezone,
            "max_items": sub.max_items,
            "weekends": sub.weekends,
            "updated": now,
            "confirmed": _naive_utc(sub.confirmed),
            "mailed": _naive_utc(sub.mailed),
            "last_digest": _naive_utc(sub.last_digest),
            "failures": sub.failures,
            "last_error": sub.last_error,
        }
        try:
            with self._write_txn() as conn:
                if sub.id:
                    conn.execute(
                        sa.update(subscriptions).where(subscriptions.c.id == sub.id).values(values)
                    )
                    sub_id = sub.id
                else:
                    values["created"] = _naive_utc(sub.created) or now
                    sub_id = int(
                        conn.execute(
                            sa.insert(subscriptions).values(values).returning(subscriptions.c.id)
                        ).scalar_one()
                    )
                row = conn.execute(
                    sa.select(subscriptions).where(subscriptions.c.id == sub_id)
                ).first()
        except sa.exc.IntegrityError as exc:
            raise StorageError(f"another subscription has the address {sub.email!r}") from exc
        if row is None:
            raise StorageError(f"no subscription with id {sub.id}")
        return self._subscription(row)

    def get_subscription(self, sub_id: int) -> Subscription | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(subscriptions).where(subscriptions.c.id == sub_id)).first()
        return self._subscription(row) if row is not None else None

    def subscription_by_email(self, email: str) -> Subscription | None:
        q = sa.select(subscriptions).where(subscriptions.c.email == email.strip().lower())
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return self._subscription(row) if row is not None else None

    def list_subscriptions(self, status: str | None = None) -> list[Subscription]:
        q = sa.select(subscriptions).order_by(subscriptions.c.id)
        if status is not None:
            q = q.where(subscriptions.c.status == status)
        with self.engine.connect() as conn:
            return [self._subscription(r) for r in conn.execute(q)]

    def claim_digests(
        self,
        wanted: Sequence[tuple[int, str, str]],
        owner: str,
        lease: float,
        now: datetime,
    ) -> list[DigestClaim]:
        if not wanted:
            return []
        at = _naive_utc(now)
        assert at is not None
        until = at + timedelta(seconds=lease)
        led = digest_ledger.c
        out: list[DigestClaim] = []
        with self._write_txn() as conn:
            new_rows = [
                {
                    "subscription_id": sid,
                    "period": period,
                    "state": "claimed",
                    "message_id": mid,
                    "owner": owner,
                    "lease_until": until,
                    "attempts": 1,
                    "created": at,
                }
                for sid, period, mid in wanted
            ]
            ins = self._insert_ignoring_conflicts(
                digest_ledger, ["subscription_id", "period"]
            ).returning(led.subscription_id, led.period)
            inserted: set[tuple[int, str]] = set()
            for chunk in _chunks(new_rows, 500):
                inserted |= {(r[0], r[1]) for r in conn.execute(ins, list(chunk))}
            by_key = {(sid, period): mid for sid, period, mid in wanted}
            for (sid, period), mid in by_key.items():
                if (sid, period) in inserted:
                    out.append(DigestClaim(sid, period, mid, 1, None))
            rest = [k for k in by_key if k not in inserted]
            for sid, period in rest:
                row = conn.execute(
                    sa.update(digest_ledger)
                    .where(
                        led.subscription_id == sid,
                        led.period == period,
                        led.state.in_(["claimed", "composed"]),
                        sa.or_(
                            led.lease_until.is_(None),
                            led.lease_until < at,
                            led.owner == owner,
                        ),
                    )
                    .values(owner=owner, lease_until=until, attempts=led.attempts + 1)
                    .returning(led.message_id, led.attempts, led["items"], led.owner)
                ).first()
                if row is not None:
                    items = json.loads(row.items) if row.items else None
                    out.append(DigestClaim(sid, period, row.message_id, row.attempts, items))
        return out

    def _held_digest(self, sub_id: int, period: str, owner: str) -> sa.ColumnElement[bool]:
        led = digest_ledger.c
        return sa.and_(
            led.subscription_id == sub_id,
            led.period == period,
            led.owner == owner,
            led.state.in_(["claimed", "composed"]),
        )

    def save_digest_items(
        self, sub_id: int, period: str, owner: str, items: list[dict[str, Any]]
    ) -> bool:
        return sub_id in self.save_digests(owner, [(sub_id, period, items)])

    @cached_property
    def _digest_statements(self) -> dict[str, Any]:
        """The per-mail ledger statements, built once: a digest run executes them for every
        subscriber, and building a SQLAlchemy statement costs more than running it."""
        led = digest_ledger.c
        at = sa.bindparam("b_at", type_=led.sent.type)
        held = sa.and_(
            led.subscription_id == sa.bindparam("b_sid"),
            led.period == sa.bindparam("b_period"),
            led.owner == sa.bindparam("b_owner"),
            led.state.in_(["claimed", "composed"]),
        )
        return {
            "compose": sa.update(digest_ledger)
            .where(held)
            .values(state="composed", items=sa.bindparam("b_items", type_=led["items"].type)),
            "finish": sa.update(digest_ledger)
            .where(held)
            .values(state="sent", sent=at, owner=None, lease_until=None, error=None),
            "record": self._insert_ignoring_conflicts(digest_sent, ["subscription_id", "paper_id"]),
            "last": sa.update(subscriptions)
            .where(subscriptions.c.id == sa.bindparam("b_sid"))
            .values(last_digest=at, failures=0, last_error=None),
        }

    def save_digests(
        self, owner: str, rows: Sequence[tuple[int, str, list[dict[str, Any]]]]
    ) -> set[int]:
        saved: set[int] = set()
        compose = self._digest_statements["compose"]
        with self._write_txn() as conn:
            for sub_id, period, items in rows:
                res = conn.execute(
                    compose,
                    {
                        "b_sid": sub_id,
                        "b_period": period,
                        "b_owner": owner,
                        "b_items": orjson.dumps(items).decode(),
                    },
                )
                if res.rowcount == 1:
                    saved.add(sub_id)
        return saved

    def finish_digest(
        self, sub_id: int, period: str, owner: str, paper_ids: Sequence[str], now: datetime
    ) -> bool:
        at = _naive_utc(now)
        st = self._digest_statements
        with self._write_txn() as conn:
            res = conn.execute(
                st["finish"], {"b_sid": sub_id, "b_period": period, "b_owner": owner, "b_at": at}
            )
            if res.rowcount != 1:
                return False
            ids = sorted(set(paper_ids))
            if ids:
                conn.execute(
                    st["record"],
                    [{"subscription_id": sub_id, "paper_id": pid, "sent": at} for pid in ids],
                )
            conn.execute(st["last"], {"b_sid": sub_id, "b_at": at})
            return True

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
        with self._write_txn() as conn:
            values: dict[str, Any] = {"owner": None, "lease_until": None, "error": error}
            if permanent:
                values["state"] = "failed"
            res = conn.execute(
                sa.update(digest_ledger)
                .where(self._held_digest(sub_id, period, owner))
                .values(values)
            )
            if res.rowcount != 1:
                return False
            if permanent:
                s = subscriptions.c
                conn.execute(
                    sa.update(subscriptions)
                    .where(s.id == sub_id)
                    .values(failures=s.failures + 1, last_error=error)
                )
                conn.execute(
                    sa.update(subscriptions)
                    .where(s.id == sub_id, s.failures >= pause_after, s.status == "active")
                    .values(status="paused")
                )
            return True

    def ledger(self, sub_id: int) -> list[dict[str, Any]]:
        q = (
            sa.select(digest_ledger)
            .where(digest_ledger.c.subscription_id == sub_id)
            .order_by(digest_ledger.c.period)
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(q))
        return [
            {
                "period": r.period,
                "state": r.state,
                "message_id": r.message_id,
                "attempts": r.attempts,
                "items": json.loads(r.items) if r.items else None,
                "sent": _aware(r.sent),
                "error": r.error,
            }
            for r in rows
        ]

    def sent_paper_ids(self, sub_ids: Sequence[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {sid: set() for sid in sub_ids}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(sub_ids)):
                q = sa.select(digest_sent.c.subscription_id, digest_sent.c.paper_id).where(
                    digest_sent.c.subscription_id.in_(chunk)
                )
                for r in conn.execute(q):
                    out[r.subscription_id].add(r.paper_id)
        return out

    def set_feedback(self, sub_id: int, paper_id: str, value: int, now: datetime) -> None:
        with self._write_txn() as conn:
            conn.execute(
                sa.delete(feedback).where(
                    feedback.c.subscription_id == sub_id, feedback.c.paper_id == paper_id
                )
            )
            if value:
                conn.execute(
                    sa.insert(feedback).values(
                        subscription_id=sub_id,
                        paper_id=paper_id,
                        value=1 if value > 0 else -1,
                        at=_naive_utc(now),
                    )
                )

    def feedback_for(self, sub_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {sid: {} for sid in sub_ids}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(sub_ids)):
                q = sa.select(feedback).where(feedback.c.subscription_id.in_(chunk))
                for r in conn.execute(q):
                    out[r.subscription_id][r.paper_id] = r.value
        return out

    def record_event(self, paper_id: str, kind: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(paper_events).values(paper_id=paper_id, kind=kind, at=_naive_utc(now))
            )

    def event_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        e = paper_events.c
        q = (
            sa.select(e.paper_id, e.kind, sa.func.count())
            .where(e.at >= _naive_utc(since))
            .group_by(e.paper_id, e.kind)
        )
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for pid, kind, n in conn.execute(q):
                out.setdefault(pid, {})[kind] = int(n)
        return out

    def release(self, job_id: int, worker_id: str) -> bool:
        with self._write_txn() as conn:
            res = conn.execute(
                sa.update(jobs)
                .where(self._held(job_id, worker_id))
                .values(
                    state="queued",
                    run_after=_utcnow(),
                    attempts=sa.case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
                    locked_by=None,
                    locked_until=None,
                )
            )
            return res.rowcount == 1

    def job_counts_by_kind(self) -> list[tuple[str, str, int]]:
        q = (
            sa.select(jobs.c.kind, jobs.c.state, sa.func.count())
            .group_by(jobs.c.kind, jobs.c.state)
            .order_by(jobs.c.kind, jobs.c.state)
        )
        with self.engine.connect() as conn:
            return [(r[0], r[1], int(r[2])) for r in conn.execute(q)]

    def digest_counts(self) -> dict[str, int]:
        q = sa.select(
            digest_ledger.c.state,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(digest_ledger.c.attempts), 0),
        ).group_by(digest_ledger.c.state)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        out = {str(r[0]): int(r[1]) for r in rows}
        out["attempts"] = sum(int(r[2]) for r in rows)
        return out

    def schema_revision(self) -> tuple[str | None, str]:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(cfg).get_current_head() or ""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

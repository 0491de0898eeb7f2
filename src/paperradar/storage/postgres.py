"""The scale backend: PostgreSQL with full-text search (weighted tsvector, GIN) and pgvector.

``postgresql://`` and ``postgres://`` URLs use psycopg 3 (``pip install 'paperradar[postgres]'``).
Keyword search compiles the query AST with :mod:`paperradar.storage.pgfts`; vectors keep their
portable ``bytea`` copy and, when the ``vector`` extension is installed, a ``vector`` column with
one HNSW (cosine) index per model, created at the first write of that model's vectors.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from paperradar.errors import InvalidQuery, StorageError
from paperradar.model import Paper
from paperradar.querylang import Query
from paperradar.storage.base import Cursor, KeywordHit, PaperFilter
from paperradar.storage.pgfts import (
    TSV,
    CompiledTsQuery,
    compile_tsquery,
    excluded_tsquery,
    matches,
    rank_expression,
)
from paperradar.storage.schema import embeddings, papers
from paperradar.storage.sql import SqlStorage, _chunks, paper_to_row

__all__ = ["PostgresStorage", "driver_url"]

# Keyword search in a large corpus ranks only the newest matches (PostgresStorage._ranked).
EXACT_RANK_MAX = 20_000  # up to this many papers (by pk), every match is ranked
RANK_CANDIDATES = 300  # beyond: the newest this many matches
COPY_MIN_ROWS = 500  # a batch of new papers at least this big is written with COPY
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
MIN_EF_SEARCH = 40


def driver_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` as SQLAlchemy URLs for psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class VectorType(sa.types.UserDefinedType[str]):
    """pgvector's ``vector(dim)``, bound as its text form ``[x,y,…]``."""

    cache_ok = True

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim

    def get_col_spec(self, **kw: Any) -> str:
        return f"vector({self.dim})" if self.dim else "vector"


def _vector_text(blob: bytes) -> str:
    return "[" + ",".join(map(repr, np.frombuffer(blob, dtype="<f4").tolist())) + "]"


class PostgresStorage(SqlStorage):
    dialect_name = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        try:
            sa_url = sa.make_url(driver_url(url))
            # JIT compiling a search's expressions costs more (tens of ms) than it saves, and
            # parallel workers for one search slow the others down on a busy server (at 1 M
            # papers under load: 1.2 s → 0.55 s for the slowest query). A URL's own options win.
            connect_args = (
                {}
                if "options" in sa_url.query
                else {"options": "-c jit=off -c max_parallel_workers_per_gather=0"}
            )
            engine = sa.create_engine(
                sa_url,
                pool_size=pool_size,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
        except (ImportError, sa.exc.ArgumentError) as exc:
            raise StorageError(
                f"cannot use {url}: {exc}; install the PostgreSQL extra "
                "(pip install 'paperradar[postgres]')"
            ) from exc
        super().__init__(url, engine)
        with self.engine.connect() as conn:
            self.has_pgvector = bool(
                conn.execute(
                    sa.text(
                        "SELECT 1 FROM information_schema.columns "
                        "WHERE table_name = 'embeddings' AND column_name = 'embedding' "
                        "AND table_schema = current_schema()"
                    )
                ).first()
            )
        self._indexed: set[tuple[str, int]] = set()
        self._top_pk: tuple[float, int] = (-math.inf, 0)  # (when read, max(pk))

    # -- writes: COPY for batches of new papers -----------------------------------------------
    def _write(
        self, conn: sa.Connection, upserts: Sequence[Paper], deletes: Sequence[str], now: datetime
    ) -> None:
        """A big batch of papers none of which is stored yet (a first import) goes in with one
        ``COPY`` (26 % less CPU, client and server, than the multi-row INSERT: 20 k papers, 18.8
        against 25.3 CPU-seconds); anything else (updates, deletes, versions, small batches) takes
        the common path."""
        ids = [p.id for p in upserts]
        if (
            deletes
            or len(upserts) < COPY_MIN_ROWS
            or len(set(ids)) != len(ids)
            or any(p.versions for p in upserts)
            or conn.execute(
                sa.select(papers.c.pk)
                .where(papers.c.id == sa.func.any(sa.bindparam("ids")))
                .limit(1),
                {"ids": ids},
            ).first()
        ):
            super()._write(conn, upserts, deletes, now)
            return
        rows = [paper_to_row(p, now) for p in upserts]
        columns = list(rows[0])
        raw = conn.connection.dbapi_connection
        assert raw is not None
        statement = f"COPY papers ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([row[c] for c in columns])

    # -- keyword search: the generated tsvector column needs no maintenance --------------------
    def _fts_delete(self, conn: sa.Connection, pks: Sequence[int]) -> None:
        return None

    def _fts_insert(self, conn: sa.Connection, ids: Sequence[str]) -> None:
        return None

    def _not_matching(self, query: Query) -> sa.ColumnElement[bool]:
        excluded = excluded_tsquery(query)
        if excluded is None:
            return sa.true()
        return sa.not_(matches(TSV, excluded))

    def keyword_search(
        self,
        query: Query,
        flt: PaperFilter,
        *,
        limit: int = 20,
        after: Cursor | None = None,
        require_all: bool = False,
    ) -> list[KeywordHit]:
        compiled = compile_tsquery(query, require_all=require_all)
        if compiled is None:
            return []
        conds = [*compiled.conditions, *self._where(flt)]
        if compiled.match is not None:
            conds.append(matches(TSV, compiled.match))
        try:
            with self.engine.connect() as conn:
                return self._ranked(conn, compiled, conds, limit, after)
        except sa.exc.DataError as exc:
            raise InvalidQuery(f"the keyword index rejected the query: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"keyword search failed: {exc}") from exc

    def _ranked(
        self,
        conn: sa.Connection,
        compiled: CompiledTsQuery,
        conds: list[sa.ColumnElement[bool]],
        limit: int,
        after: Cursor | None,
    ) -> list[KeywordHit]:
        """The best ``limit`` matches by ``ts_rank``.

        Ranking reads and scores every ranked row, and an OR of common words matches most of a
        large corpus (11 s at 1 M papers to rank them all). So in a corpus of more than
        ``EXACT_RANK_MAX`` papers only the newest ``RANK_CANDIDATES`` matches (by pk, the order
        papers arrived in) are ranked: an index walk from the newest paper for common words, a
        bitmap scan and a top-N sort for rare ones. Up to that size every match is ranked."""
        rows: Any = sa.select(papers.c.pk, papers.c.id, TSV.label("tsv")).where(*conds)
        if self._largest_pk(conn) > EXACT_RANK_MAX:
            rows = rows.order_by(papers.c.pk.desc()).limit(max(RANK_CANDIDATES, limit))
        candidates = rows.subquery("candidates")
        score = rank_expression(compiled.rank, candidates.c.tsv)
        q = sa.select(candidates.c.pk, candidates.c.id, score.label("score"))
        if after is not None and isinstance(after.value, float | int):
            value = float(after.value)
            q = q.where(sa.or_(score < value, sa.and_(score == value, candidates.c.pk < after.pk)))
        q = q.order_by(sa.desc("score"), candidates.c.pk.desc()).limit(limit)
        return [KeywordHit(r.pk, r.id, float(r.score)) for r in conn.execute(q)]

    def _largest_pk(self, conn: sa.Connection) -> int:
        """``max(pk)``, read at most once a minute (it only decides how search ranks)."""
        read_at, top = self._top_pk
        now = time.monotonic()
        if now - read_at > 60:
            top = int(conn.execute(sa.select(sa.func.max(papers.c.pk))).scalar() or 0)
            self._top_pk = (now, top)
        return top

    # -- vectors ---------------------------------------------------------------------------------
    def write_embeddings(self, model: str, rows: Sequence[tuple[int, str, bytes]]) -> None:
        if not rows:
            return
        if not self.has_pgvector:
            super().write_embeddings(model, rows)
            return
        dims = {len(v) // 4 for _, _, v in rows}
        if len(dims) != 1:
            raise StorageError(
                f"vectors for model {model!r} have mixed dimensions {sorted(dims)}: one model, "
                "one dimension"
            )
        insert = sa.text(
            "INSERT INTO embeddings (paper_pk, model, content_hash, vector, embedding) "
            "VALUES (:pk, :model, :hash, :blob, CAST(:vec AS vector)) "
            "ON CONFLICT (paper_pk, model) DO UPDATE SET content_hash = EXCLUDED.content_hash, "
            "vector = EXCLUDED.vector, embedding = EXCLUDED.embedding"
        )
        try:
            with self.engine.begin() as conn:
                for chunk in _chunks(list(rows), 1000):
                    conn.execute(
                        insert,
                        [
                            {"pk": pk, "model": model, "hash": h, "blob": v, "vec": _vector_text(v)}
                            for pk, h, v in chunk
                        ],
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"writing {len(rows)} vectors of {model!r} failed: {exc}") from exc
        self._ensure_vector_index(model, dims.pop())

    def _index_name(self, model: str, dim: int) -> str:
        return f"ix_embeddings_hnsw_{hashlib.sha1(model.encode()).hexdigest()[:12]}_{dim}"

    def _ensure_vector_index(self, model: str, dim: int) -> None:
        """One HNSW (cosine) index per model and dimension: a partial expression index."""
        if (model, dim) in self._indexed:
            return
        name = self._index_name(model, dim)
        literal = model.replace("'", "''")
        ddl = (
            f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
            f"((embedding::vector({dim})) vector_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
            f"WHERE model = '{literal}'"
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text(ddl))
        except sa.exc.IntegrityError:
            pass  # another process created it at the same moment
        except sa.exc.ProgrammingError as exc:
            if "already exists" not in str(exc):
                raise StorageError(f"creating the vector index {name} failed: {exc}") from exc
        self._indexed.add((model, dim))

    def nearest_embeddings(
        self, model: str, vector: bytes, limit: int, flt: PaperFilter | None = None
    ) -> list[tuple[int, float]]:
        if not self.has_pgvector:
            return super().nearest_embeddings(model, vector, limit, flt)
        if limit <= 0 or not np.any(np.frombuffer(vector, dtype="<f4")):
            return []
        dim = len(vector) // 4
        stored = sa.cast(sa.literal_column("embeddings.embedding"), VectorType(dim))
        distance = stored.op("<=>", return_type=sa.Float(precision=53))(
            sa.cast(sa.bindparam("qvec", _vector_text(vector)), VectorType(dim))
        )
        q = (
            sa.select(embeddings.c.paper_pk, (1.0 - distance).label("sim"))
            .where(embeddings.c.model == model)
            .order_by(distance)
            .limit(limit)
        )
        if flt is not None and not flt.is_empty():
            q = q.join(papers, papers.c.pk == embeddings.c.paper_pk).where(*self._where(flt))
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(f"SET LOCAL hnsw.ef_search = {max(MIN_EF_SEARCH, min(limit, 1000))}")
                )
                conn.execute(sa.text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                rows = conn.execute(q).all()
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"vector search failed: {exc}") from exc
        out = [(int(r.paper_pk), float(r.sim)) for r in rows]
        out.sort(key=lambda t: (-t[1], t[0]))  # relaxed_order: re-sort the few returned
        return out

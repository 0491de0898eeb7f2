"""The scale backend: PostgreSQL with full-text search (weighted tsvector, GIN) and pgvector.

``postgresql://`` and ``postgres://`` URLs use psycopg 3 (``pip install 'paperradar[postgres]'``).
Keyword search compiles the query AST with :mod:`paperradar.storage.pgfts`; vectors keep their
portable ``bytea`` copy and, when the ``vector`` extension is installed, a ``vector`` column with
one HNSW (cosine) index per model, created at the first write of that model's vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from paperradar.errors import InvalidQuery, StorageError
from paperradar.querylang import Query
from paperradar.storage.base import Cursor, KeywordHit, PaperFilter
from paperradar.storage.pgfts import (
    TSV,
    compile_tsquery,
    excluded_tsquery,
    matches,
    rank_expression,
)
from paperradar.storage.schema import embeddings, papers
from paperradar.storage.sql import SqlStorage, _chunks

__all__ = ["PostgresStorage", "driver_url"]

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
            engine = sa.create_engine(
                driver_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
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
        score = rank_expression(compiled.rank)
        conds = [*compiled.conditions, *self._where(flt)]
        if compiled.match is not None:
            conds.append(matches(TSV, compiled.match))
        q = sa.select(papers.c.pk, papers.c.id, score.label("score")).where(*conds)
        if after is not None and isinstance(after.value, float | int):
            value = float(after.value)
            q = q.where(sa.or_(score < value, sa.and_(score == value, papers.c.pk < after.pk)))
        q = q.order_by(sa.desc("score"), papers.c.pk.desc()).limit(limit)
        try:
            with self.engine.connect() as conn:
                return [KeywordHit(r.pk, r.id, float(r.score)) for r in conn.execute(q)]
        except sa.exc.DataError as exc:
            raise InvalidQuery(f"the keyword index rejected the query: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"keyword search failed: {exc}") from exc

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

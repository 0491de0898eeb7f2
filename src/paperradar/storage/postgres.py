"""The scale backend: PostgreSQL with full-text search (weighted tsvector, GIN) and pgvector.

``postgresql://`` and ``postgres://`` URLs use psycopg 3 (``pip install 'paperradar[postgres]'``).
Keyword search compiles the query AST with :mod:`paperradar.storage.pgfts`; vectors keep their
portable ``bytea`` copy and, when the ``vector`` extension is installed, a ``vector`` column with
one HNSW (cosine) index per model, created at the first write of that model's vectors.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from paperradar.errors import FeatureUnavailable, InvalidQuery, StorageError
from paperradar.model import Paper, Version
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
from paperradar.storage.schema import embeddings, paper_versions, papers
from paperradar.storage.sql import SqlStorage, _aware, _chunks, mapping_to_paper, paper_to_row

__all__ = ["PostgresStorage", "driver_url"]

# Keyword search in a large corpus ranks only the newest matches (PostgresStorage._ranked).
EXACT_RANK_MAX = 20_000  # up to this many papers (by pk), every match is ranked
RANK_CANDIDATES = 300  # beyond: the newest this many matches
# A phrase query (beyond EXACT_RANK_MAX) checks the phrase in the newest this many papers that
# have its words: positions are in each row's tsvector, not in the GIN index
PHRASE_CANDIDATES = 1000
# ... searched for in windows of pk blocks back from the newest paper: blocks of PK_BLOCK pks,
# the search index's first key (migration 0009), windows this many blocks wide, then the rest
PK_BLOCK = 4096
WINDOW_BLOCKS = (3, 2, 4, 8, 16, 32)
# The first HEAD_WINDOWS windows tell common matches from rare ones: when they hold so few that
# the whole corpus should hold at most about PLAIN_MAX, the rest is read at once (the index's
# AND of the query's keys without a block, then ~1.4 µs per match on the heap: ~14 ms) instead of
# window by window (where the planner, expecting few matches, may read the whole posting lists
# once per window: ~9 ms each for four common words that seldom meet)
HEAD_WINDOWS = 1
PLAIN_MAX = 6_000
# The search index's category keys (migration 0009): every category and its archive ("cs.LG" and
# "cs"), so that a category filter is an index key, not a check of each row
CATEGORY_KEYS = (
    "(string_to_array(btrim(papers.categories), ' ') || "
    "string_to_array(btrim(regexp_replace(papers.categories, '\\.\\S*', '', 'g')), ' '))"
)
COPY_MIN_ROWS = 500  # a batch of new papers at least this big is written with COPY
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
MIN_EF_SEARCH = 40
# A pooled connection idle for longer than this is pinged before it is handed out (a server
# restart or a dropped connection is found then); a busy pool's connections are not
PING_AFTER_IDLE_S = 10.0


def driver_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` as SQLAlchemy URLs for psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class VectorType(sa.types.UserDefinedType[str]):
    """pgvector's ``vector(dim)`` or ``halfvec(dim)``, bound as the text form ``[x,y,…]``."""

    cache_ok = True

    def __init__(self, dim: int, kind: str = "vector") -> None:
        self.dim = dim
        self.kind = kind

    def get_col_spec(self, **kw: Any) -> str:
        return f"{self.kind}({self.dim})"


def _ping_when_idle(engine: sa.Engine) -> None:
    """``pool_pre_ping`` for connections that sat idle in the pool: a search checks out a
    connection three or four times, and a ping at each checkout was a round trip (a wake-up of
    the server process) each time. A connection back in use within ``PING_AFTER_IDLE_S`` is
    handed out as it is; one idle for longer, or one psycopg knows is broken, is pinged and
    replaced when the ping fails. A connection that breaks within that time (a server restart
    between two searches) fails its statement once, and SQLAlchemy then replaces the pool."""

    @sa.event.listens_for(engine, "checkin")
    def _idle_from(dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None:
            return  # just connected
        if getattr(dbapi_conn, "broken", False) or time.monotonic() - since > PING_AFTER_IDLE_S:
            try:
                alive = engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:  # any failure: a new connection
                raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc
            if not alive:
                raise sa.exc.DisconnectionError("stale pooled connection")


_PARAM = re.compile(r"%\((\w+)\)s")


def _sql(
    expr: sa.ColumnElement[Any], dialect: sa.Dialect, prefix: str, params: dict[str, Any]
) -> str:
    """``expr`` as PostgreSQL text (psycopg's ``%(name)s`` placeholders, each name given
    ``prefix``), its bound values added to ``params``. Keyword search assembles its statement
    from a few such pieces: building and compiling the whole windowed statement in SQLAlchemy
    took ~4 ms of Python per search, more than the pieces and the text."""
    compiled = expr.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params.update({prefix + k: v for k, v in compiled.params.items()})
    return "(" + _PARAM.sub(lambda m: f"%({prefix}{m.group(1)})s", str(compiled)) + ")"


def _vector_text(blob: bytes) -> str:
    return "[" + ",".join(map(repr, np.frombuffer(blob, dtype="<f4").tolist())) + "]"


class PostgresStorage(SqlStorage):
    dialect_name = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        try:
            sa_url = sa.make_url(driver_url(url))
            # JIT compiling a search's expressions costs more (tens of ms) than it saves, and
            # parallel workers for one search slow the others down on a busy server (at 1 M
            # papers under load: 1.2 s → 0.55 s for the slowest query). Statements psycopg has
            # prepared are planned for their parameters each time: a plan for "any words" could
            # walk the newest papers for a rare word. A URL's own options win.
            connect_args = (
                {}
                if "options" in sa_url.query
                else {
                    "options": "-c jit=off -c max_parallel_workers_per_gather=0 "
                    "-c plan_cache_mode=force_custom_plan"
                }
            )
            engine = sa.create_engine(
                sa_url, pool_size=pool_size, max_overflow=10, connect_args=connect_args
            )
            _ping_when_idle(engine)
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
        # Searches read in autocommit: no BEGIN and ROLLBACK round trips around their one
        # statement (each costs a wake-up of the server process: milliseconds on a busy host).
        self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._indexed: set[tuple[str, int]] = set()
        self._vector_kinds: dict[tuple[str, int], str] = {}
        self._top_pk: tuple[float, int] = (-math.inf, 0)  # (when read, max(pk))
        self._paper_reads: dict[str, sa.Select[Any]] = {}

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

    # -- reads of whole papers: one statement, no transaction ---------------------------------
    def _papers_statement(self, key: str) -> sa.Select[Any]:
        """Papers whose ``key`` column (``pk`` or ``id``) is in the bound array ``keys``, each
        with its versions as arrays (a lateral subquery): one statement instead of the portable
        path's two. Built once per key (SQLAlchemy then reuses its compiled form)."""
        q = self._paper_reads.get(key)
        if q is None:
            v = paper_versions.c

            def agg(col: sa.ColumnElement[Any], name: str) -> sa.Label[Any]:
                return sa.func.array_agg(aggregate_order_by(col, v.version)).label(name)

            versions = (
                sa.select(agg(v.version, "v_version"), agg(v.date, "v_date"), agg(v.size, "v_size"))
                .where(v.paper_pk == papers.c.pk)
                .lateral("v")
            )
            kind = sa.Integer() if key == "pk" else sa.String()
            keys = sa.bindparam("keys", type_=ARRAY(kind))
            q = (
                sa.select(papers, versions)
                .select_from(papers.outerjoin(versions, sa.true()))
                .where(papers.c[key] == sa.func.any(keys))
            )
            self._paper_reads[key] = q
        return q

    def _papers_by(self, key: str, values: Sequence[Any]) -> list[tuple[int, Paper]]:
        """(pk, paper) of the stored papers whose ``key`` is one of ``values``, read in
        autocommit (no BEGIN and ROLLBACK round trips)."""
        out = []
        with self._reads.connect() as conn:
            for chunk in _chunks(list(values)):
                rows = conn.execute(self._papers_statement(key), {"keys": list(chunk)}).mappings()
                for m in rows:
                    versions = (
                        [
                            Version(n, _aware(d), size)
                            for n, d, size in zip(
                                m["v_version"], m["v_date"], m["v_size"], strict=True
                            )
                        ]
                        if m["v_version"]
                        else None
                    )
                    out.append((m["pk"], mapping_to_paper(m, versions)))
        return out

    def get_papers(self, paper_ids: Sequence[str]) -> list[Paper]:
        by_id = {p.id: p for _, p in self._papers_by("id", paper_ids)}
        return [by_id[i] for i in paper_ids if i in by_id]

    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]:
        return dict(self._papers_by("pk", pks))

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
        # the same papers as _where's test of each row, found in the index (a value with
        # blanks, which no category has, is left to that test)
        if flt.categories and all(c.split() == [c] for c in flt.categories):
            keys = sa.literal_column(CATEGORY_KEYS, ARRAY(sa.Text()))
            wanted = sorted(set(flt.categories))
            cats = sa.cast(sa.bindparam("cats", wanted, type_=ARRAY(sa.Text())), ARRAY(sa.Text()))
            conds.append(keys.op("&&", return_type=sa.Boolean)(cats))
        try:
            with self._reads.connect() as conn:
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
        papers arrived in) are ranked, found window by window (:meth:`_newest_matches`). Up to
        that size every match is ranked."""
        top = self._largest_pk(conn)
        match = compiled.match
        params: dict[str, Any] = {}
        dialect = conn.dialect
        rank = _sql(rank_expression(compiled.rank), dialect, "r_", params)
        where: list[str] = []
        if top <= EXACT_RANK_MAX:
            if match is not None:
                conds = [*conds, matches(TSV, match)]
            source = "papers"
            where.append(_sql(sa.and_(sa.true(), *conds), dialect, "w_", params))
        else:
            wanted = max(RANK_CANDIDATES, limit)
            if compiled.loose is not None and match is not None:
                # A phrase: its words in any order select the newest PHRASE_CANDIDATES papers
                # through the index alone; only those are read for the words' positions.
                conds = [*conds, matches(TSV, compiled.loose)]
                wanted = max(PHRASE_CANDIDATES, limit)
                where.append(_sql(matches(TSV, match), dialect, "p_", params))
            elif match is not None:
                conds = [*conds, matches(TSV, match)]
            found = _sql(sa.and_(sa.true(), *conds), dialect, "w_", params)
            newest = self._newest_matches(found, top, wanted)
            source = f"({newest}) AS newest JOIN papers ON papers.pk = newest.pk"
        if after is not None and isinstance(after.value, float | int):
            params["after_score"], params["after_pk"] = float(after.value), after.pk
            where.append(
                f"({rank} < %(after_score)s OR ({rank} = %(after_score)s "
                "AND papers.pk < %(after_pk)s))"
            )
        sql = (
            f"SELECT papers.pk, papers.id, {rank} AS score FROM {source}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY score DESC, papers.pk DESC LIMIT {int(limit)}"
        )
        rows = conn.exec_driver_sql(sql, params).all()
        return [KeywordHit(pk, id_, float(score)) for pk, id_, score in rows]

    def _newest_matches(self, where: str, top: int, wanted: int) -> str:
        """SQL of the pks of the newest ``wanted`` papers that satisfy ``where`` (SQL over
        ``papers``), searched in windows that grow backwards from the newest paper
        (``WINDOW_BLOCKS`` blocks of ``PK_BLOCK`` pks each, then the rest) until enough are found.

        One statement: ``(window 1 ORDER BY pk DESC LIMIT n) UNION ALL (window 2 …) …`` under
        ``LIMIT n``. An ``Append`` runs its branches in order and the ``LIMIT`` stops it as soon
        as it has ``n`` rows, so a later window is searched only when the earlier ones held too
        few matches (paperradar's connections run without parallel query, which could run the
        branches side by side). The windows return pks only: the candidates' rows (their
        tsvectors) are read once, for the ranking.

        A window is a list of blocks, ``pk / PK_BLOCK = ANY(ARRAY[…])``: the block, the words
        of the query, the category keys and the author trigrams are keys of one GIN index
        (migration 0009), and a bitmap scan runs one index scan per block, each the AND of its
        keys' posting lists with skipping. So a window costs about its matches (a few hundred
        microseconds per block besides), not its width: a range of blocks as one key made the
        GIN scan collect every pk of the range (~0.2 µs each, ~26 ms for 128 k papers), and a
        filter that was not in the index (a category) was checked row by row. The windows sort
        by ``pk + 0``: ordered by the primary key the planner could walk it backwards testing
        every row, which for a narrow filter was the whole corpus. The rest (no block key)
        reads the posting lists whole: only a query with few matches gets there."""
        windows: list[list[int]] = []
        block = top // PK_BLOCK
        for width in WINDOW_BLOCKS:
            if block < 0:
                break
            windows.append(list(range(block, max(block - width, -1), -1)))
            block -= width

        def branch(cond: str, gate: str = "") -> str:
            return (
                f"(SELECT papers.pk FROM papers WHERE {where} AND {cond}{gate} "
                f"ORDER BY papers.pk + 0 DESC LIMIT {wanted})"
            )

        def blocks(w: list[int]) -> str:
            return f"(papers.pk / {PK_BLOCK}) = ANY(ARRAY[{','.join(map(str, w))}])"

        def below(b: int) -> str:
            return f"papers.pk + 0 < {(b + 1) * PK_BLOCK}"

        if len(windows) <= HEAD_WINDOWS or block < 0:  # a small corpus: every window, in turn
            branches = [branch(blocks(w)) for w in windows]
            if block >= 0:
                branches.append(branch(below(block)))
            return f"SELECT pk FROM ({' UNION ALL '.join(branches)}) AS windows LIMIT {wanted}"
        head = " UNION ALL ".join(branch(blocks(w)) for w in windows[:HEAD_WINDOWS])
        head_end = windows[HEAD_WINDOWS - 1][-1] * PK_BLOCK  # the first pk of the head
        # as many matches in the head as this means a corpus-wide count of about PLAIN_MAX
        sparse = max(0, PLAIN_MAX * (top - head_end) // max(top, 1))
        few = f" AND (SELECT count(*) FROM head) <= {sparse}"
        many = f" AND (SELECT count(*) FROM head) > {sparse}"
        tail = [branch(below(windows[HEAD_WINDOWS - 1][-1] - 1), few)]
        tail += [branch(blocks(w), many) for w in windows[HEAD_WINDOWS:]]
        tail.append(branch(below(block), many))
        return (
            f"WITH head AS MATERIALIZED (SELECT pk FROM ({head}) AS h LIMIT {wanted}) "
            f"SELECT pk FROM ((SELECT pk FROM head) UNION ALL {' UNION ALL '.join(tail)}) "
            f"AS windows LIMIT {wanted}"
        )

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

    def _index_name(self, model: str, dim: int, kind: str = "halfvec") -> str:
        suffix = "h" if kind == "halfvec" else ""
        return f"ix_embeddings_hnsw_{hashlib.sha1(model.encode()).hexdigest()[:12]}_{dim}{suffix}"

    def _vector_kind(self, conn: sa.Connection, model: str, dim: int) -> str:
        """How ``model``'s vectors are indexed: ``halfvec`` (an HNSW index over the vectors cast
        to half precision: half the memory, the same neighbours for 384-d embeddings) or
        ``vector`` (float32: the index of databases made before, or pgvector < 0.7). Read
        once per model and dimension."""
        kind = self._vector_kinds.get((model, dim))
        if kind is not None:
            return kind
        names = conn.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' "
                "AND schemaname = current_schema() AND indexname = ANY(:names)"
            ),
            {"names": [self._index_name(model, dim, k) for k in ("halfvec", "vector")]},
        ).scalars()
        found = {n[-1] == "h" for n in names}
        if True in found:
            kind = "halfvec"
        elif False in found:
            kind = "vector"
        else:
            version = conn.execute(
                sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar()
            major_minor = tuple(int(x) for x in str(version or "0.0").split(".")[:2])
            kind = "halfvec" if major_minor >= (0, 7) else "vector"
            return kind  # not indexed yet: decided again once it is
        self._vector_kinds[(model, dim)] = kind
        return kind

    def _ensure_vector_index(
        self, model: str, dim: int, *, maintenance_work_mem: str | None = None
    ) -> None:
        """One HNSW (cosine) index per model and dimension: a partial expression index over
        the vectors as ``halfvec(dim)`` (see :meth:`_vector_kind`), unless the database has
        one already. ``maintenance_work_mem`` (say ``'2GB'``): the build's memory for this
        statement; the graph of 1 M 384-d vectors needs about 1.3 GB to be built in memory."""
        if (model, dim) in self._indexed:
            return
        literal = model.replace("'", "''")
        try:
            with self._reads.connect() as conn:
                kind = self._vector_kind(conn, model, dim)
                name = self._index_name(model, dim, kind)
                if maintenance_work_mem is not None:
                    conn.execute(
                        sa.text("SELECT set_config('maintenance_work_mem', :m, true)"),
                        {"m": maintenance_work_mem},
                    )
                conn.execute(
                    sa.text(
                        f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
                        f"((embedding::{kind}({dim})) {kind}_cosine_ops) "
                        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
                        f"WHERE model = '{literal}'"
                    )
                )
        except sa.exc.IntegrityError:
            pass  # another process created it at the same moment
        except sa.exc.ProgrammingError as exc:
            if "already exists" not in str(exc):
                raise StorageError(
                    f"creating the vector index for {model!r} failed: {exc}"
                ) from exc
        self._vector_kinds[(model, dim)] = kind
        self._indexed.add((model, dim))

    def nearest_embeddings(
        self, model: str, vector: bytes, limit: int, flt: PaperFilter | None = None
    ) -> list[tuple[int, float]]:
        if not self.has_pgvector:
            return super().nearest_embeddings(model, vector, limit, flt)
        if limit <= 0 or not np.any(np.frombuffer(vector, dtype="<f4")):
            return []
        dim = len(vector) // 4
        try:
            with self._reads.connect() as conn:
                kind = self._vector_kind(conn, model, dim)

                # the index orders by the indexed expression; the similarity returned is exact
                def distance(k: str) -> sa.ColumnElement[float]:
                    stored = sa.cast(sa.literal_column("embeddings.embedding"), VectorType(dim, k))
                    qvec = sa.cast(sa.bindparam("qvec", type_=sa.String), VectorType(dim, k))
                    return stored.op("<=>", return_type=sa.Float(precision=53))(qvec)

                order = distance(kind)
                exact = 1.0 - distance("vector")
                q = (
                    sa.select(embeddings.c.paper_pk, exact.label("sim"))
                    .where(embeddings.c.model == model)
                    .order_by(order)
                    .limit(limit)
                )
                if flt is not None and not flt.is_empty():
                    q = q.join(papers, papers.c.pk == embeddings.c.paper_pk).where(
                        *self._where(flt)
                    )
                ef_search = max(MIN_EF_SEARCH, min(limit, 1000))
                # session settings (autocommit: no transaction to be LOCAL to), sent only when
                # this pooled connection has other values: a round trip saved per search
                info = conn.connection.info
                if info.get("hnsw.ef_search") != ef_search:
                    conn.exec_driver_sql(
                        f"SET hnsw.ef_search = {ef_search}; SET hnsw.iterative_scan = relaxed_order"
                    )
                    info["hnsw.ef_search"] = ef_search
                rows = conn.execute(q, {"qvec": _vector_text(vector)}).all()
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"vector search failed: {exc}") from exc
        out = [(int(r.paper_pk), float(r.sim)) for r in rows]
        out.sort(key=lambda t: (-t[1], t[0]))  # relaxed_order, half precision: re-sort the few
        return out

    def rebuild_keyword_index(self, progress: Callable[[int, int], None] | None = None) -> int:
        raise FeatureUnavailable(
            "on PostgreSQL the keyword index is the database's own (the generated tsvector column "
            "and its GIN indexes) and stays in step by itself; if it is damaged, run "
            "REINDEX TABLE papers in psql"
        )

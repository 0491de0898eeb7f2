"""Scale figures on one backend: ingest rate, keyword (and, with vectors, hybrid) search p50/p95,
listing page latency, database size and memory, at N papers.

    python benchmarks/scale.py 100000 --backend sqlite
    python benchmarks/scale.py 1000000 --backend postgres --db postgresql://…/paperradar_bench
    python benchmarks/scale.py --corpus /tmp/corpus-1m.jsonl --backend postgres --db … --json out.json

The corpus comes from ``benchmarks/make_corpus.py`` (made in a temporary folder unless
``--corpus`` names one). PostgreSQL: the database ``--db`` is emptied first (its ``public``
schema is dropped). Hybrid search is measured only when the database holds vectors of the
configured embedding model (``Engine.embed`` fills them); otherwise its row says why not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from host import KEYWORD_QUERIES, describe_host, make_corpus_file

from paperradar.engine import Engine, make_engine
from paperradar.storage import PaperFilter

QUERIES = [
    *KEYWORD_QUERIES,
    '"neural network"',
    "transformer -survey",
    "cat:cs.LG diffusion",
    "author:Zhang learning",
    "year:2024 benchmark",
    "sparse",
]
CATEGORIES = ["cs.LG", "cs.CV", "stat.ML", "quant-ph", "cs"]


def percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "p50": round(ms[len(ms) // 2], 2),
        "p95": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 2),
        "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "mean": round(statistics.fmean(ms), 2),
    }


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def empty_postgres(url: str) -> None:
    from paperradar.storage.postgres import driver_url

    engine = sa.create_engine(driver_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def drop_secondary_indexes(url: str) -> list[str]:
    """Drop the papers table's indexes except its keys (a bulk load builds them once, after);
    return the statements that re-create them."""
    from paperradar.storage.postgres import driver_url

    engine = sa.create_engine(driver_url(url))
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS ddl "
                "FROM pg_index i WHERE i.indrelid = 'papers'::regclass "
                "AND NOT i.indisprimary AND NOT i.indisunique"
            )
        ).all()
        for r in rows:
            conn.execute(sa.text(f"DROP INDEX {r.name}"))
    engine.dispose()
    return [r.ddl for r in rows]


def create_indexes(eng: Engine, statements: list[str]) -> None:
    with eng.storage.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '1GB'"))
        for ddl in statements:
            conn.execute(sa.text(ddl))


def load_vectors(eng: Engine, model: str, n: int, dim: int = 384) -> float:
    """Random unit vectors of ``model`` for the newest ``n`` papers (COPY; papers that have one
    keep it), then the HNSW index, dropped first and built over all of them; returns the index
    build seconds."""
    import numpy as np

    storage = eng.storage
    rng = np.random.default_rng(7 + n)
    model_bytes = model.encode()
    with storage.engine.begin() as conn:  # type: ignore[attr-defined]
        for name in conn.execute(
            sa.text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_embeddings_hnsw%'")
        ).scalars():
            conn.execute(sa.text(f"DROP INDEX {name}"))
        rows = conn.execute(
            sa.text(
                "SELECT pk, content_hash FROM (SELECT pk, content_hash FROM papers "
                "ORDER BY pk DESC LIMIT :n) newest WHERE NOT EXISTS (SELECT 1 FROM embeddings "
                "WHERE paper_pk = pk AND model = :m)"
            ),
            {"n": n, "m": model},
        ).all()
        raw = conn.connection.dbapi_connection
        # binary COPY: (int4 pk, text model, text hash, bytea vector, vector embedding)
        with (
            raw.cursor() as cur,
            cur.copy(  # type: ignore[union-attr]
                "COPY embeddings (paper_pk, model, content_hash, vector, embedding) "
                "FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
            for start in range(0, len(rows), 10_000):
                chunk = rows[start : start + 10_000]
                vecs = rng.standard_normal((len(chunk), dim)).astype("<f4")
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                parts = []
                for (pk, h), v in zip(chunk, vecs, strict=True):
                    blob, hb = v.tobytes(), h.encode()
                    pgvec = struct.pack(">hh", dim, 0) + v.astype(">f4").tobytes()
                    parts.append(
                        struct.pack(">hii", 5, 4, pk)
                        + struct.pack(">i", len(model_bytes))
                        + model_bytes
                        + struct.pack(">i", len(hb))
                        + hb
                        + struct.pack(">i", len(blob))
                        + blob
                        + struct.pack(">i", len(pgvec))
                        + pgvec
                    )
                copy.write(b"".join(parts))
            copy.write(struct.pack(">h", -1))
    with storage.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text("ANALYZE embeddings"))
    t = time.perf_counter()
    storage._ensure_vector_index(model, dim, maintenance_work_mem="2GB")  # type: ignore[attr-defined]
    return time.perf_counter() - t


def embedded_as(eng: Engine) -> str:
    """The name the configured model's vectors are stored under (what hybrid search reads)."""
    model = eng.embedder()
    if model is None:
        raise SystemExit("the embedding model cannot load: no hybrid figures")
    return model.name


def database_size(eng: Engine, sqlite_path: Path | None) -> dict[str, float]:
    if sqlite_path is not None:
        files = list(sqlite_path.parent.glob(sqlite_path.name + "*"))
        return {"total_mib": round(sum(f.stat().st_size for f in files) / 2**20, 1)}
    with eng.storage.engine.connect() as conn:  # type: ignore[attr-defined]
        total = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        heap = conn.execute(sa.text("SELECT pg_table_size('papers')")).scalar_one()
        idx = conn.execute(sa.text("SELECT pg_indexes_size('papers')")).scalar_one()
    return {
        "total_mib": round(total / 2**20, 1),
        "papers_table_mib": round(heap / 2**20, 1),
        "papers_indexes_mib": round(idx / 2**20, 1),
    }


def server_memory() -> str:
    """Resident memory of the PostgreSQL server processes (all of them), from /proc."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != "postgres":
                continue
            for line in (d / "status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return f"{total / 1024:.0f} MiB anon RSS" if total else "n/a"


def _server_cpu_s(eng: Engine) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends connected to this database (from
    /proc: the server must run on this machine); None for SQLite or a remote server."""
    storage = eng.storage
    if getattr(storage, "dialect_name", "") != "postgresql":
        return None
    with storage.engine.connect() as conn:  # type: ignore[attr-defined]
        pids = conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = ''"
            )
        ).scalars()
        total, tick = 0.0, os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure_search(eng: Engine, mode: str, n: int, rng: random.Random) -> dict[str, float]:
    """Latency percentiles of ``n`` searches, and the CPU each took (this process + the
    database's backends): what the latency would be on an idle machine, near enough, when other
    work shares the cores."""
    for q in QUERIES:  # warm the caches once (and open the pool's connections)
        ran = eng.search(q, mode=mode, limit=20)  # type: ignore[arg-type]
        if ran.mode != mode and q.strip():
            raise SystemExit(f"{q!r} ran as {ran.mode}, not {mode}: {ran.notice}")
    cpu0, server0 = time.process_time(), _server_cpu_s(eng)
    out = percentiles(timed(lambda: eng.search(rng.choice(QUERIES), mode=mode, limit=20), n))  # type: ignore[arg-type]
    cpu = time.process_time() - cpu0
    server1 = _server_cpu_s(eng)
    if server0 is not None and server1 is not None:
        cpu += server1 - server0
    out["cpu_ms_per_query"] = round(cpu * 1000 / n, 2)
    return out


def measure_listing(eng: Engine, n: int, rng: random.Random) -> dict[str, dict[str, float]]:
    first = percentiles(timed(lambda: eng.papers(PaperFilter(), limit=50), n))
    cat = percentiles(
        timed(lambda: eng.papers(PaperFilter(categories=[rng.choice(CATEGORIES)]), limit=50), n)
    )
    _, cursor = eng.papers(PaperFilter(), limit=50)
    for _ in range(20):  # page 21 onwards: keyset, no OFFSET
        _, cursor = eng.papers(PaperFilter(), limit=50, cursor=cursor)
    deep = percentiles(timed(lambda: eng.papers(PaperFilter(), limit=50, cursor=cursor), n))
    return {"first page": first, "category page": cat, "page 21": deep}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", type=int, nargs="?", default=100_000)
    ap.add_argument("--corpus", type=Path, help="a JSON-lines corpus (default: make N papers)")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--db", help="PostgreSQL URL (emptied first); SQLite: a temporary file")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--keep", type=Path, help="SQLite: keep the database at this path")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--bulk",
        action="store_true",
        help="PostgreSQL: drop the secondary indexes, ingest, then build them (counted in)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: measure the database --db as it is (no emptying, no ingest)",
    )
    ap.add_argument(
        "--vectors",
        type=int,
        default=0,
        help="PostgreSQL: add random 384-d vectors for the newest N papers and their HNSW index",
    )
    args = ap.parse_args()
    if args.backend == "postgres" and not args.db:
        ap.error("--backend postgres needs --db postgresql://…")

    with tempfile.TemporaryDirectory(prefix="paperradar-scale-") as tmp:
        corpus = args.corpus
        if corpus is None and not args.reuse:
            corpus = make_corpus_file(args.n, Path(tmp) / "corpus.jsonl")
        sqlite_path: Path | None = None
        if args.backend == "sqlite":
            sqlite_path = args.keep or Path(tmp) / "scale.db"
            url = f"sqlite:///{sqlite_path}"
        else:
            url = args.db
            if not args.reuse:
                empty_postgres(url)
        eng = make_engine(url)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        new = 0
        if not args.reuse:
            rebuild = drop_secondary_indexes(url) if args.bulk else []
            new = eng.ingest_jsonl(corpus).new
            create_indexes(eng, rebuild)
        ingest_s = time.perf_counter() - t
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.backend == "postgres" and not args.reuse:
            # what autovacuum does after a big load, at once: statistics and the visibility map
            auto = eng.storage.engine.execution_options(isolation_level="AUTOCOMMIT")  # type: ignore[attr-defined]
            with auto.connect() as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        hnsw_s = None
        if args.vectors:
            hnsw_s = round(load_vectors(eng, embedded_as(eng), args.vectors), 1)
        rng = random.Random(1)
        figures: dict[str, Any] = {
            "machine": describe_host(),
            "backend": args.backend,
            "papers": eng.stats()["papers"],
            "ingest_s": round(ingest_s, 1),
            "ingest_papers_per_s": round(new / ingest_s) if new else None,
            "hnsw_build_s": hnsw_s,
            "client_peak_rss_mib": round(rss1 / 1024),
            "client_rss_before_ingest_mib": round(rss0 / 1024),
            "size": database_size(eng, sqlite_path),
            "keyword": measure_search(eng, "keyword", args.queries, rng),
            "listing": measure_listing(eng, max(50, args.queries // 3), rng),
        }
        model = embedded_as(eng)
        if eng.storage.count_embeddings(model) > 0:
            figures["hybrid"] = measure_search(eng, "hybrid", args.queries, rng)
        else:
            figures["hybrid"] = f"n/a: no vectors of model {model!r} (build them with Engine.embed)"
        if args.backend == "postgres":
            figures["server_memory"] = server_memory()
        eng.close()

    print(f"machine: {figures['machine']}")
    print(f"backend: {args.backend}, {figures['papers']:,} papers")
    rows = [
        (
            "ingest",
            f"{figures['ingest_s']} s = {figures['ingest_papers_per_s']:,} papers/s"
            if new
            else "not measured (--reuse)",
        ),
        ("client peak RSS", f"{figures['client_peak_rss_mib']} MiB"),
        ("database size", ", ".join(f"{k} {v}" for k, v in figures["size"].items())),
        ("keyword search", _pct(figures["keyword"])),
    ]
    rows += [(f"listing {k}", _pct(v)) for k, v in figures["listing"].items()]
    hybrid = figures["hybrid"]
    rows.append(("hybrid search", _pct(hybrid) if isinstance(hybrid, dict) else hybrid))
    if hnsw_s is not None:
        rows.append(("HNSW build", f"{hnsw_s} s for {args.vectors:,} vectors"))
    if "server_memory" in figures:
        rows.append(("server memory", figures["server_memory"]))
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:>{width}}: {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _pct(p: dict[str, float]) -> str:
    cpu = f"; CPU {p['cpu_ms_per_query']} ms/query" if "cpu_ms_per_query" in p else ""
    return f"p50 {p['p50']} ms, p95 {p['p95']} ms, p99 {p['p99']} ms{cpu}"


if __name__ == "__main__":
    main()

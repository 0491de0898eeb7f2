"""The Engine: the one façade everything user-facing goes through (web, CLI, digest scheduler)."""

from __future__ import annotations

import gzip
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from paperradar.config import Settings, load_settings
from paperradar.errors import InvalidId, NotFound, PaperradarError, SourceError
from paperradar.export import ExportFormat, export_papers
from paperradar.harvest import HarvestPlan
from paperradar.ingest import IngestReport, ingest_batches
from paperradar.metrics import Family
from paperradar.model import Paper, ParseProblem, parse_paper_id, title_key
from paperradar.search.beir import load_beir
from paperradar.search.metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k
from paperradar.search.service import Hit, Mode, SearchResult, Sort, search_papers
from paperradar.search.similar import similar_by_keywords
from paperradar.sources import Batch, records_to_batches
from paperradar.sources.jsonl import parse_jsonl
from paperradar.sources.pages import parse_page_dump
from paperradar.storage import Cursor, PaperFilter, SourceState, Storage, open_storage
from paperradar.storage.base import SortKey

__all__ = ["Engine", "bench_ir", "make_engine"]

OnBatch = Callable[[Batch, IngestReport], None]
Window = Literal["day", "week", "month"]
WINDOWS: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}


class Engine:
    """Ingest, search, list and export papers over one storage backend."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest ----------------------------------------------------------------------------------
    def ingest(
        self,
        batches: Iterable[Batch],
        *,
        state_key: str | None = None,
        on_batch: OnBatch | None = None,
    ) -> IngestReport:
        """Store batches of records from any source (papers + checkpoint per transaction)."""
        return ingest_batches(self.storage, batches, state_key=state_key, on_batch=on_batch)

    def harvest(self, plan: HarvestPlan, *, on_batch: OnBatch | None = None) -> IngestReport:
        """Run a source from its stored checkpoint. Every batch is stored with its checkpoint as
        it arrives; on a network error what was stored stays and a re-run resumes after it."""
        state = self.storage.source_state(plan.state_key)
        total = IngestReport()
        try:
            for batch in plan.batches(state.checkpoint if state and state.checkpoint else None):
                total.add(self.ingest([batch], state_key=plan.state_key, on_batch=on_batch))
        except SourceError as exc:
            self.storage.record_source_error(plan.state_key, str(exc))
            kept = total.new + total.updated
            raise SourceError(
                f"{exc} ({kept} new or updated papers were stored before the error; "
                "run the same command again to resume)"
            ) from exc
        self.storage.record_source_error(plan.state_key, None)
        return total

    def enrich_ids(self, *, limit: int | None = None, refresh: bool = False) -> list[str]:
        """arXiv ids/DOIs of papers to enrich with citation counts (those without, unless refresh)."""
        out: list[str] = []
        for p in self.storage.iter_papers():
            if (refresh or p.citations is None) and (p.arxiv_id or p.doi):
                out.append(f"arXiv:{p.arxiv_id}" if p.arxiv_id else f"doi:{p.doi}")
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _ingest_file_records(
        self,
        source: str,
        path: Path,
        parse: Callable[[bytes | Iterable[bytes], str], Iterator[Paper | ParseProblem]],
        data: bytes | Iterable[bytes],
        on_batch: OnBatch | None,
    ) -> IngestReport:
        try:
            records = list(parse(data, str(path)))
        except SourceError as exc:
            problem = ParseProblem(source, str(path), str(exc).split(": ", 2)[-1])
            report = IngestReport(read=1, rejected=1, problems=[problem])
            self.storage.record_source_error(source, str(exc))
            return report
        return self.ingest(
            records_to_batches(source, iter(records), location=str(path)), on_batch=on_batch
        )

    def ingest_pages(
        self, paths: Sequence[Path], *, on_batch: OnBatch | None = None
    ) -> IngestReport:
        """Ingest page dumps (title line + abstract line listings). Bad files are reported, not fatal."""
        total = IngestReport()
        for path in paths:
            data = _read(path, "page_dump")
            if isinstance(data, ParseProblem):
                total.add(IngestReport(read=1, rejected=1, problems=[data]))
                continue
            total.add(
                self._ingest_file_records(
                    "page_dump",
                    path,
                    lambda d, loc: parse_page_dump(d, location=loc),  # type: ignore[arg-type]
                    data,
                    on_batch,
                )
            )
        return total

    def ingest_jsonl(self, path: Path, *, on_batch: OnBatch | None = None) -> IngestReport:
        """Ingest our JSON-lines export format (plain or .gz), streamed."""
        try:
            opener: Any = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as fh:
                records = parse_jsonl(fh, location=str(path))
                return self.ingest(
                    records_to_batches("jsonl", records, location=str(path)), on_batch=on_batch
                )
        except (OSError, EOFError) as exc:
            problem = ParseProblem("jsonl", str(path), f"cannot read the file: {exc}")
            return IngestReport(read=1, rejected=1, problems=[problem])

    def ingest_demo(self, *, on_batch: OnBatch | None = None) -> IngestReport:
        """Ingest the demo corpus bundled with the package (three captured listing pages)."""
        folder = resources.files("paperradar") / "data" / "demo"
        total = IngestReport()
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            if item.name.endswith(".txt"):
                records = parse_page_dump(item.read_bytes(), location=f"demo/{item.name}")
                total.add(self.ingest(records_to_batches("page_dump", records), on_batch=on_batch))
        return total

    # -- read ------------------------------------------------------------------------------------
    def paper(self, paper_id: str) -> Paper:
        """A paper by any form of its id (arXiv id or URL, DOI, or stored id)."""
        found = self.storage.get_paper(paper_id)
        if found is None:
            try:
                found = self.storage.get_paper(parse_paper_id(paper_id).key)
            except InvalidId:
                found = None
        if found is None:
            raise NotFound(f"no paper with id {paper_id!r}")
        return found

    def search(
        self,
        query: str,
        *,
        mode: Mode | None = None,
        sort: Sort = "relevance",
        limit: int = 20,
        cursor: str | None = None,
        syntax: bool = True,
    ) -> SearchResult:
        chosen: Any = mode or self.settings.search_mode
        return search_papers(
            self.storage, query, mode=chosen, sort=sort, limit=limit, cursor=cursor
        )

    def papers(
        self,
        flt: PaperFilter | None = None,
        *,
        sort: SortKey = "published",
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[Paper], str | None]:
        """A page of papers in ``sort`` order (newest first) and the cursor of the next page."""
        after = Cursor.decode(cursor) if cursor else None
        rows = self.storage.list_papers(
            flt or PaperFilter(), sort=sort, limit=limit + 1, after=after
        )
        nxt = rows[limit - 1][1].encode() if len(rows) > limit else None
        return [p for p, _ in rows[:limit]], nxt

    def similar(self, paper_id: str, *, limit: int = 10) -> list[Hit]:
        """Papers like this one, best first."""
        return self.more_like_these([paper_id], limit=limit)

    def more_like_these(self, paper_ids: Sequence[str], *, limit: int = 10) -> list[Hit]:
        """Papers like a set of papers (followed papers, a library), best first."""
        seeds = [self.paper(pid) for pid in paper_ids]
        hits = similar_by_keywords(self.storage, seeds, limit)
        papers = self.storage.papers_by_pk([h.pk for h in hits])
        return [Hit(papers[h.pk], h.score, ["keyword"]) for h in hits if h.pk in papers]

    def trending(self, *, window: Window = "week", limit: int = 20) -> list[Paper]:
        """The papers of the window with the most reader signal (upvotes), newest first on ties."""
        since = datetime.now(UTC) - WINDOWS[window]
        rows = self.storage.list_papers(PaperFilter(since=since), sort="upvotes", limit=limit)
        return [p for p, _ in rows]

    def stats(self) -> dict[str, Any]:
        return self.storage.stats()

    def sources(self) -> list[SourceState]:
        return self.storage.source_states()

    # -- operations ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Is the database reachable, are its migrations at head, how deep is the queue."""
        try:
            current, head = self.storage.schema_revision()
            jobs = self.storage.job_counts()
        except PaperradarError as exc:
            return {"status": "error", "database": "unreachable", "error": str(exc)}
        except Exception as exc:  # a driver error that storage did not wrap: still an answer
            return {
                "status": "error",
                "database": "unreachable",
                "error": f"{type(exc).__name__}: {exc}",
            }
        at_head = current == head
        return {
            "status": "ok" if at_head else "error",
            "database": "ok",
            "backend": self.storage.url.split(":", 1)[0],
            "migrations": {"current": current, "head": head, "at_head": at_head},
            "queue": {"queued": jobs.get("queued", 0), "running": jobs.get("running", 0)},
        }

    def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, key: str | None = None
    ) -> int:
        """Queue a job for the workers (with ``key``: at most one pending job per key)."""
        return self.storage.enqueue(kind, payload or {}, key=key)

    def jobs(self) -> list[tuple[str, str, int]]:
        """(kind, state, count) of the queue."""
        return self.storage.job_counts_by_kind()

    def metrics(self, now: datetime | None = None) -> list[Family]:
        """Numbers for ``/metrics``, read from the database (the same in every process).
        Add a family here for anything the database counts (e.g. digest sends and failures)."""
        now = now or datetime.now(UTC)
        states = [
            s for s in self.storage.source_states() if not s.source.startswith("migrate-data:")
        ]
        runs = [s.last_run for s in states if s.last_run is not None]
        lag = Family(
            "paperradar_ingest_lag_seconds",
            "gauge",
            "Seconds since the most recent run of any source (now - newest last_run).",
        )
        if runs:
            lag.add(max(0.0, (now - max(runs)).total_seconds()))
        last_run = Family(
            "paperradar_source_last_run_timestamp_seconds",
            "gauge",
            "Unix time of each source's last run.",
        )
        errors = Family(
            "paperradar_source_error", "gauge", "1 when a source's last run ended with an error."
        )
        for s in states:
            if s.last_run is not None:
                last_run.add(s.last_run.timestamp(), {"source": s.source})
            errors.add(1.0 if s.last_error else 0.0, {"source": s.source})
        depth = Family("paperradar_queue_jobs", "gauge", "Jobs in the queue per state.")
        for state, n in self.storage.job_counts().items():
            depth.add(n, {"state": state})
        per_kind = Family(
            "paperradar_jobs", "gauge", "Jobs per kind and state (done/failed until purged)."
        )
        for kind, state, n in self.storage.job_counts_by_kind():
            per_kind.add(n, {"kind": kind, "state": state})
        stats = self.storage.stats()
        papers = Family("paperradar_papers", "gauge", "Papers stored.").add(stats["papers"])
        vectors = Family("paperradar_embeddings", "gauge", "Embedding vectors stored.").add(
            stats["embeddings"]
        )
        return [lag, last_run, errors, depth, per_kind, papers, vectors]

    def export(self, fmt: ExportFormat) -> Iterator[str]:
        return export_papers(self.storage.iter_papers(), fmt)

    def find_by_title(self, title: str) -> Paper | None:
        try:
            return self.storage.get_paper(title_key(title))
        except InvalidId:
            return None


def bench_ir(
    folder: Path,
    *,
    split: str = "test",
    mode: Mode = "keyword",
    settings: Settings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Load a BEIR folder into a temporary store, run every query of ``split`` and score it.

    Returns nDCG@10, Recall@100, MRR@10, queries/s (query time only) and the indexing and
    embedding times, which are reported separately.
    """
    data = load_beir(folder, split)
    if not data.queries:
        raise SourceError(f"no judged queries in split {split!r}", location=str(folder))
    with tempfile.TemporaryDirectory(prefix="paperradar-bench-") as tmp:
        eng = make_engine(f"sqlite:///{tmp}/bench.db", settings=settings)
        try:
            started = time.perf_counter()
            eng.ingest(records_to_batches("beir", data.papers()))
            index_s = time.perf_counter() - started
            embed_s = 0.0
            if mode != "keyword":
                raise PaperradarError(
                    f"--mode {mode} needs embeddings, which this version does not build yet"
                )
            ndcg, recall, mrr = [], [], []
            started = time.perf_counter()
            for i, (qid, text) in enumerate(data.queries.items()):
                result = eng.search(text, mode=mode, limit=100, syntax=False)
                ranked = [h.paper.id for h in result.hits]
                rels = data.qrels[qid]
                ndcg.append(ndcg_at_k(ranked, rels, 10))
                recall.append(recall_at_k(ranked, rels, 100))
                mrr.append(mrr_at_k(ranked, rels, 10))
                if progress is not None:
                    progress("queries", i + 1, len(data.queries))
            query_s = time.perf_counter() - started
        finally:
            eng.close()
    n = len(data.queries)
    return {
        "ndcg@10": round(mean(ndcg), 4),
        "recall@100": round(mean(recall), 4),
        "mrr@10": round(mean(mrr), 4),
        "qps": round(n / query_s, 1) if query_s else None,
        "queries": n,
        "mode": mode,
        "split": split,
        "index_seconds": round(index_s, 2),
        "embed_seconds": round(embed_s, 2),
    }


def _read(path: Path, source: str) -> bytes | ParseProblem:
    try:
        return path.read_bytes()
    except OSError as exc:
        return ParseProblem(source, str(path), f"cannot read the file: {exc.strerror or exc}")


def make_engine(
    db: str | None = None, settings: Settings | None = None, **overrides: Any
) -> Engine:
    """An engine over ``db`` (a database URL or a SQLite file path; default from settings)."""
    settings = settings or load_settings(**overrides)
    url = db or settings.effective_database_url
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return Engine(settings, open_storage(url))

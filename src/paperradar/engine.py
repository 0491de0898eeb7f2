"""The Engine: the one façade everything user-facing goes through (web, CLI, digest scheduler)."""

from __future__ import annotations

import gzip
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from paperradar.config import Settings, load_settings
from paperradar.digest.compose import Composer, Pool
from paperradar.digest.links import Links
from paperradar.digest.render import MailParts
from paperradar.digest.run import DigestReport, DigestRunner
from paperradar.digest.smtp import RateLimit, SmtpSender, parse_smtp_url
from paperradar.digest.subscriptions import Preferences, SubscriptionDesk
from paperradar.digest.tokens import TokenSigner, load_or_create_secret
from paperradar.embed import Embedder, load_embedder, normalize_rows, vector_name
from paperradar.errors import (
    ConfigError,
    FeatureUnavailable,
    InvalidId,
    NotFound,
    PaperradarError,
    SourceError,
)
from paperradar.export import ExportFormat, export_papers
from paperradar.harvest import HarvestPlan
from paperradar.ingest import IngestReport, ingest_batches
from paperradar.metrics import Family
from paperradar.model import Paper, ParseProblem, parse_paper_id, title_key
from paperradar.search.beir import load_beir
from paperradar.search.fusion import make_fuse
from paperradar.search.indexing import EmbedProgress, EmbedReport, embed_backlog
from paperradar.search.metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k
from paperradar.search.service import Hit, Mode, SearchResult, Sort, VectorSearch, search_papers
from paperradar.search.similar import (
    SAMPLE,
    PoolMoreLikeThis,
    TermStats,
    similar_by_keywords,
)
from paperradar.search.trending import trending_papers
from paperradar.search.vector import IndexInfo, VectorIndex, index_path_for
from paperradar.sources import Batch, prefetched, records_to_batches
from paperradar.sources.bibtex import parse_bibtex
from paperradar.sources.jsonl import parse_jsonl
from paperradar.sources.pages import demo_pages, parse_page_dump
from paperradar.storage import Cursor, PaperFilter, SourceState, Storage, open_storage
from paperradar.storage.base import Interests, SortKey, Subscription
from paperradar.storage.sql import paper_text

__all__ = ["Engine", "bench_ir", "make_engine"]

log = logging.getLogger(__name__)

OnBatch = Callable[[Batch, IngestReport], None]
Window = Literal["day", "week", "month"]
TERM_STATS_TTL_S = 3600.0  # word statistics of "more like this" are re-sampled hourly
NO_VECTORS_TTL_S = 5.0  # "nothing is embedded yet" is re-read at most this often (per search)
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
        self._embedder: Embedder | None = None
        self._embedder_error: str | None = None
        self._index: VectorIndex | None = None
        self._papers_count: int | None = None
        self._papers_counted = 0.0
        self._recount: threading.Thread | None = None
        self._no_vectors_at = 0.0  # when "no vectors stored" was last read (0: re-read)
        self._signer: TokenSigner | None = None
        self._term_stats: tuple[float, TermStats] | None = None

    def close(self) -> None:
        recount = self._recount
        if recount is not None:
            recount.join()  # a count in flight finishes before its storage closes
        if self._index is not None:
            self._index.close()
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
                batches = records_to_batches("jsonl", records, location=str(path))
                # parsed on a thread while the previous batch is stored; closed before fh is
                with closing(prefetched(batches)) as ahead:
                    return self.ingest(ahead, on_batch=on_batch)
        except (OSError, EOFError) as exc:
            problem = ParseProblem("jsonl", str(path), f"cannot read the file: {exc}")
            return IngestReport(read=1, rejected=1, problems=[problem])

    def ingest_demo(self, *, on_batch: OnBatch | None = None) -> IngestReport:
        """Ingest the demo corpus bundled with the package (three captured listing pages)."""
        total = IngestReport()
        for location, data in demo_pages():
            records = parse_page_dump(data, location=location)
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
        vector_search = self._vector_search() if chosen != "keyword" else None
        result = search_papers(
            self.storage,
            query,
            mode=chosen,
            sort=sort,
            limit=limit,
            cursor=cursor,
            vector_search=vector_search,
            fuse=make_fuse(self.settings.search_fusion),
            syntax=syntax,
        )
        if vector_search is None and chosen != "keyword" and self._embedder_error:
            result.notice = (
                f"semantic search is unavailable ({self._embedder_error}): keyword results only"
            )
        elif vector_search is not None and result.mode != "keyword" and not result.notice:
            vectors, papers = self._coverage()
            if vectors < papers:
                result.notice = (
                    f"embeddings cover {vectors} of {papers} papers so far: "
                    "semantic matches among the rest will appear once `paperradar embed` has run"
                )
        return result

    def _coverage(self) -> tuple[int, int]:
        """(vectors in the index, papers stored), the count re-read at most every 10 s."""
        index = self._index
        vectors = len(index) if index is not None else 0
        now = time.monotonic()
        if self._papers_count is None or vectors > self._papers_count:
            self._papers_count = self.storage.count_papers()
            self._papers_counted = now
        elif now - self._papers_counted > 10.0 and self._recount is None:
            # Counting a million rows takes 60-350 ms on SQLite: no search waits for it.
            self._papers_counted = now
            self._recount = threading.Thread(
                target=self._count_papers, name="paperradar-count", daemon=True
            )
            self._recount.start()
        return vectors, self._papers_count

    def _count_papers(self) -> None:
        try:
            self._papers_count = self.storage.count_papers()
        except Exception as exc:  # the old count stays; the next search tries again
            log.warning("could not count the papers: %s", exc)
        finally:
            self._recount = None

    # -- embeddings ------------------------------------------------------------------------------
    def embedder(self) -> Embedder | None:
        """The configured embedding model, loaded once; None (with a warning) if it cannot load."""
        if self._embedder is None and self._embedder_error is None:
            try:
                self._embedder = load_embedder(
                    self.settings.embed_model,
                    batch_size=self.settings.embed_model_batch,
                    cache_dir=self.settings.data_dir / "models",
                )
            except FeatureUnavailable as exc:
                self._embedder_error = str(exc)
                log.warning("embedding model unavailable, search is keyword-only: %s", exc)
        return self._embedder

    def vector_index(self) -> VectorIndex | None:
        """The vector index of the configured model (None when the model cannot load)."""
        if self._index is None:
            model = self.embedder()
            if model is None:
                return None
            self._index = VectorIndex(
                self.storage,
                model.name,
                model.dim,
                path=index_path_for(self.storage.url, model.name),
                nprobe=self.settings.ann_nprobe,
            )
        return self._index

    def embed(
        self,
        *,
        limit: int | None = None,
        progress: EmbedProgress | None = None,
        pk_range: tuple[int, int] | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> EmbedReport:
        """Embed papers without a current vector (resumable; each batch stored as it is done);
        only those with a pk in ``[start, end)`` of ``pk_range`` when given."""
        model = self.embedder()
        if model is None:
            return EmbedReport(
                model=self.settings.embed_model,
                remaining=self.storage.count_papers(),
                error=self._embedder_error,
            )
        self._papers_count = None
        self._no_vectors_at = 0.0
        return embed_backlog(
            self.storage,
            model,
            self.vector_index(),
            batch_size=self.settings.embed_batch_size,
            limit=limit,
            progress=progress,
            pk_range=pk_range,
            before_write=before_write,
        )

    def rebuild_index(self, *, progress: Callable[[int, int], None] | None = None) -> IndexInfo:
        """Rebuild the vector index file from the stored vectors."""
        index = self.vector_index()
        if index is None:
            raise FeatureUnavailable(f"no embedding model: {self._embedder_error}")
        return index.rebuild(progress=progress)

    def rebuild_keyword_index(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the keyword index from the papers (SQLite); returns the papers indexed."""
        return self.storage.rebuild_keyword_index(progress)

    def index_info(self) -> IndexInfo | None:
        index = self.vector_index()
        if index is None:
            return None
        len(index)
        return index.info()

    def _nothing_embedded(self) -> bool:
        """No vectors of the configured model are stored yet (and no index is loaded)."""
        if self._index is not None or self._embedder_error is not None:
            return False
        now = time.monotonic()
        if self._no_vectors_at and now - self._no_vectors_at < NO_VECTORS_TTL_S:
            return True  # a search a moment ago found none: spare every search the count
        stored_as = vector_name(self.settings.embed_model)
        nothing = stored_as is not None and not self.storage.count_embeddings(stored_as)
        self._no_vectors_at = now if nothing else 0.0
        return nothing

    def _vector_search(self) -> VectorSearch | None:
        if self._nothing_embedded():
            return None  # don't load the model for nothing
        model = self.embedder()
        index = self.vector_index()
        if model is None or index is None or len(index) == 0:
            return None

        def run(text: str, flt: PaperFilter, k: int) -> list[tuple[int, float]]:
            return index.search(model.embed_query(text), flt, k)

        return run

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
        by_vector = self._similar_by_vectors(seeds, limit)
        if by_vector is not None:
            return by_vector
        hits = similar_by_keywords(self.storage, seeds, limit, self._word_stats())
        papers = self.storage.papers_by_pk([h.pk for h in hits])
        return [Hit(papers[h.pk], h.score, ["keyword"]) for h in hits if h.pk in papers]

    def _word_stats(self) -> TermStats:
        """Document frequencies over the newest ``SAMPLE`` papers, re-read hourly."""
        now = time.monotonic()
        if self._term_stats is None or now - self._term_stats[0] > TERM_STATS_TTL_S:
            rows = self.storage.list_papers(PaperFilter(), sort="first_seen", limit=SAMPLE)
            self._term_stats = (now, TermStats.from_papers(p for p, _ in rows))
        return self._term_stats[1]

    def _similar_by_vectors(self, seeds: Sequence[Paper], limit: int) -> list[Hit] | None:
        """Nearest neighbours of the seeds' centroid; None when there are no vectors."""
        if not seeds or self._nothing_embedded():
            return None  # don't load the model for nothing
        index = self.vector_index()
        model = self._embedder
        if index is None or model is None or len(index) == 0 or not seeds:
            return None
        own = self.storage.pks_for_ids([p.id for p in seeds])
        stored = index.vectors_for(list(own.values()))
        vecs = [stored[own[p.id]] for p in seeds if p.id in own and own[p.id] in stored]
        missing = [p for p in seeds if p.id not in own or own[p.id] not in stored]
        if missing:
            vecs += list(model.embed_documents([paper_text(p.title, p.abstract) for p in missing]))
        centroid = normalize_rows(np.mean(np.stack(vecs), axis=0))
        found = index.search(centroid, None, limit + len(seeds))
        own_pks = set(own.values())
        found = [(pk, s) for pk, s in found if pk not in own_pks][:limit]
        papers = self.storage.papers_by_pk([pk for pk, _ in found])
        return [Hit(papers[pk], s, ["semantic"]) for pk, s in found if pk in papers]

    def trending(self, *, window: Window = "week", limit: int = 20) -> list[Paper]:
        """The most trending papers of the window (see ``rank.trending``), best first."""
        return [p for p, _ in self.trending_scores(window=window, limit=limit)]

    def trending_scores(
        self, *, window: Window = "week", limit: int = 20, now: datetime | None = None
    ) -> list[tuple[Paper, float]]:
        """(paper, trending score) of the window's most trending papers, best first."""
        if window not in WINDOWS:
            raise PaperradarError(f"unknown window {window!r}: use day, week or month")
        return trending_papers(
            self.storage, window=window, now=now or datetime.now(UTC), limit=limit
        )

    def record_event(self, paper_id: str, kind: Literal["click", "save"] = "click") -> None:
        """A reader clicked or saved a paper (feeds the trending score)."""
        self.storage.record_event(self.paper(paper_id).id, kind, datetime.now(UTC))

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
        digest_counts = self.storage.digest_counts()
        digests = Family(
            "paperradar_digests",
            "gauge",
            "Digests per ledger state: sent, failed (for good), pending (queued or retrying).",
        )
        for state in sorted({"sent", "failed", *digest_counts} - {"attempts"}):
            digests.add(digest_counts.get(state, 0), {"state": state})
        attempts = Family(
            "paperradar_digest_attempts",
            "gauge",
            "Delivery attempts of the digests in the ledger (attempts - sent - failed: retries).",
        ).add(digest_counts.get("attempts", 0))
        stats = self.storage.stats()
        papers = Family("paperradar_papers", "gauge", "Papers stored.").add(stats["papers"])
        vectors = Family("paperradar_embeddings", "gauge", "Embedding vectors stored.").add(
            stats["embeddings"]
        )
        return [lag, last_run, errors, depth, per_kind, digests, attempts, papers, vectors]

    def export(self, fmt: ExportFormat) -> Iterator[str]:
        return export_papers(self.storage.iter_papers(), fmt)

    def find_by_title(self, title: str) -> Paper | None:
        try:
            return self.storage.get_paper(title_key(title))
        except InvalidId:
            return None

    # -- subscriptions and digests -----------------------------------------------------------------
    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            key = load_or_create_secret(self.settings.secret_key, self.settings.data_dir)
            self._signer = TokenSigner(key)
        return self._signer

    def _smtp(self, rate: RateLimit | None = None) -> SmtpSender:
        s = self.settings
        return SmtpSender(
            parse_smtp_url(s.smtp_url),
            timeout=s.smtp_timeout_s,
            rate_per_s=s.smtp_rate_per_s,
            retries=s.smtp_retries,
            backoff_s=s.smtp_backoff_s,
            rate=rate,
        )

    def _desk(self) -> SubscriptionDesk:
        return SubscriptionDesk(self.storage, self.settings, self.signer, self._smtp)

    def subscribe(
        self,
        email: str,
        *,
        queries: Sequence[str] = (),
        categories: Sequence[str] = (),
        authors: Sequence[str] = (),
        follow: Sequence[str] = (),
        bibtex: bytes | None = None,
        trending: bool = False,
        frequency: str = "daily",
        send_hour: int = 7,
        timezone: str = "UTC",
        max_items: int = 20,
        weekends: bool = True,
    ) -> str:
        """Record a subscription request and mail the confirmation (double opt-in). Returns a
        message that is the same whether the address is new, pending or confirmed."""
        followed = [self.paper(pid).id for pid in follow]
        if bibtex is not None:
            followed += self._library_ids(bibtex)
        interests = Interests(
            queries=list(queries),
            categories=list(categories),
            authors=list(authors),
            follow=followed,
            trending=trending,
        )
        prefs = Preferences(frequency, send_hour, timezone, max_items, weekends)
        return self._desk().request(email, interests, prefs)

    def _library_ids(self, bibtex: bytes) -> list[str]:
        """Ingest a BibTeX library and return the ids of its papers (a profile to follow)."""
        records = list(parse_bibtex(bibtex, "subscription.bib"))
        found = [r for r in records if isinstance(r, Paper)]
        if not found:
            raise PaperradarError("the BibTeX library has no entry paperradar can read")
        self.ingest(records_to_batches("bibtex", iter(records)))
        stored = {p.id for p in self.storage.get_papers([p.id for p in found])}
        related = self.storage.find_related(found)
        return list(
            dict.fromkeys([p.id for p in found if p.id in stored] + [p.id for p in related])
        )

    def confirm_subscription(self, token: str) -> Subscription:
        return self._desk().confirm(token)

    def unsubscribe(self, token: str) -> Subscription:
        return self._desk().unsubscribe(token)

    def subscription_for(self, token: str) -> Subscription:
        """The subscription a signed preferences/unsubscribe link belongs to."""
        return self._desk().manage(token)

    def update_subscription(
        self,
        token: str,
        *,
        queries: Sequence[str] = (),
        categories: Sequence[str] = (),
        authors: Sequence[str] = (),
        follow: Sequence[str] = (),
        trending: bool = False,
        frequency: str = "daily",
        send_hour: int = 7,
        timezone: str = "UTC",
        max_items: int = 20,
        weekends: bool = True,
        active: bool = True,
    ) -> Subscription:
        interests = Interests(
            list(queries), list(categories), list(authors), list(follow), trending
        )
        prefs = Preferences(frequency, send_hour, timezone, max_items, weekends)
        return self._desk().update(token, interests, prefs, active=active)

    def digest_feedback(
        self, token: str, paper: str | None = None, value: int | None = None
    ) -> tuple[Subscription, Paper | None, int]:
        """Record a "more / less like this" click from a mail (the link's token, paper and
        value)."""
        sub, pid, value = self._desk().feedback(token, paper=paper, value=value)
        return sub, self.storage.get_paper(pid), value

    def subscriptions(self, status: str | None = None) -> list[Subscription]:
        return self.storage.list_subscriptions(status)

    def _runner(self) -> DigestRunner:
        models = self.storage.embedding_models()
        model = self.settings.embed_model if self.settings.embed_model in models else None
        if model is None and len(models) == 1:
            model = models[0]
        return DigestRunner(
            self.storage,
            self.settings,
            Links(self.settings.base_url, self.signer),
            composer=self._composer,
            trending=lambda window, at: self.trending_scores(
                window=window,  # type: ignore[arg-type]
                limit=100,
                now=at,
            ),
            sender=self._smtp,
            embed_model=model,
        )

    def _composer(self, pool: Pool) -> Composer:
        now = datetime.now(UTC)
        seen = [p.first_seen for p in pool.papers if p.first_seen]
        days = max(1, (now - min(seen)).days + 1) if seen else 1
        horizon = now - timedelta(days=days)
        # One search per distinct query: restricted to recent publications when the new papers
        # are recent ones (the daily arXiv flow), over everything when they are not (a snapshot
        # or library import brings old papers that paperradar has only just seen).
        recent = sum(1 for p in pool.papers if (p.published or p.first_seen or now) >= horizon)
        use_since = bool(pool.papers) and recent * 2 >= len(pool.papers)
        depth = 100

        def search(query: str) -> list[str]:
            text = f"{query} since:{days}d" if use_since and "since:" not in query else query
            return [h.paper.id for h in self.search(text, limit=depth).hits]

        in_pool: list[PoolMoreLikeThis] = []
        lock = threading.Lock()

        def similar(seeds: tuple[str, ...]) -> list[str]:
            known = self.storage.get_papers(list(seeds))
            if not known:
                return []
            by_vector = self._similar_by_vectors(known, depth)
            if by_vector is not None:
                return [h.paper.id for h in by_vector]
            # No vectors: "more like this" among the candidates, in memory (the keyword query's
            # words, scored over the papers that can be picked) instead of a keyword query over
            # the whole collection per followed paper.
            with lock:
                if not in_pool:
                    in_pool.append(PoolMoreLikeThis(pool.papers, self._word_stats()))
            return in_pool[0].similar(known, depth)

        return Composer(
            pool,
            search=search,
            similar=similar,
            trending_weight=self.settings.digest_trending_weight,
        )

    def run_digests(self, at: datetime | None = None, dry_run: bool = False) -> DigestReport:
        """Send every digest due at ``at`` (default now), exactly once per subscriber and
        period, even with concurrent runners or after a crash (see docs/digest.md)."""
        return self._runner().run(at, dry_run=dry_run)

    def preview_digest(self, email: str, at: datetime | None = None) -> MailParts:
        """The digest ``email`` would get now (nothing is sent or recorded)."""
        sub = self.storage.subscription_by_email(email)
        if sub is None:
            raise NotFound(f"no subscription for {email!r}")
        return self._runner().preview(sub, at or datetime.now(UTC))


def bench_ir(
    folder: Path,
    *,
    split: str = "test",
    mode: Mode = "keyword",
    settings: Settings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    store: str | None = None,
) -> dict[str, Any]:
    """Load a BEIR folder into a temporary store (or the empty database ``store``), run every
    query of ``split`` and score it.

    Returns nDCG@10, Recall@100, MRR@10, queries/s (query time only) and the indexing and
    embedding times, which are reported separately.
    """
    data = load_beir(folder, split)
    if not data.queries:
        raise SourceError(f"no judged queries in split {split!r}", location=str(folder))
    with tempfile.TemporaryDirectory(prefix="paperradar-bench-") as tmp:
        eng = make_engine(store or f"sqlite:///{tmp}/bench.db", settings=settings)
        if store is not None and eng.stats()["papers"]:
            eng.close()
            raise ConfigError(f"--store {store} holds papers: give an empty database")
        try:
            started = time.perf_counter()
            eng.ingest(records_to_batches("beir", data.papers()))
            index_s = time.perf_counter() - started
            embed_s = 0.0
            if mode != "keyword":
                started = time.perf_counter()

                def on_embed(done: int, total: int) -> None:
                    if progress is not None:
                        progress("embedding", done, total)

                report = eng.embed(progress=on_embed)
                if report.error:
                    raise FeatureUnavailable(f"--mode {mode} needs embeddings: {report.error}")
                embed_s = time.perf_counter() - started
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
        "model": eng.settings.embed_model if mode != "keyword" else None,
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

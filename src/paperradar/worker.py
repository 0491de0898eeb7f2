"""``paperradar worker``: run queued jobs and fire cron schedules, on one machine or many.

Any number of workers on any number of machines share one database. A worker

* fires the schedules of the job kinds it handles (cron expressions from config, UTC): each firing
  is claimed in the database (``Storage.claim_schedule``), so exactly one worker enqueues it, and
  the job carries a dedupe key, so a slow run is never queued twice;
* claims due jobs (``Storage.claim``: a lease; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), renews
  the lease from a heartbeat thread while the job runs, and completes or fails it. A worker that
  dies (``kill -9``) leaves its job to be claimed again once the lease runs out; a harvest resumes
  from the checkpoint stored with its last batch, so nothing is lost and nothing is stored twice;
* stops gracefully on SIGTERM/SIGINT: the running job stops at its next batch boundary and is
  released (queued again, the attempt not counted); a second signal stops at once.

Job kinds are a registry, ``HANDLERS``: a handler takes a :class:`JobContext` and returns a small
JSON-able summary. Adding a kind is one entry, e.g.::

    HANDLERS["reindex"] = lambda ctx: ctx.engine.rebuild_index(progress=ctx.tick)

``ctx.tick`` (any arguments) is the progress callback a long handler should call: it raises
:class:`JobStopped` when the worker is shutting down or the lease was lost.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from croniter import croniter

from paperradar.config import Settings
from paperradar.digest.smtp import TemporaryFailure
from paperradar.engine import Engine
from paperradar.errors import ConfigError, FeatureUnavailable, PaperradarError
from paperradar.harvest import (
    HarvestPlan,
    arxiv_plan,
    file_plan,
    hf_plan,
    oai_plan,
    rss_plan,
)
from paperradar.ingest import IngestReport
from paperradar.sources import Batch
from paperradar.storage import Job

__all__ = [
    "HANDLERS",
    "JobContext",
    "JobStopped",
    "Schedule",
    "Worker",
    "WorkerReport",
    "default_worker_id",
    "harvest_plan_for",
    "schedules_from_settings",
]

log = logging.getLogger("paperradar.worker")

EMBED_KEY = "embed"  # one pending embedding job at a time, whatever harvest asked for it


class JobStopped(Exception):
    """Raised inside a handler (by ``ctx.tick``) when it should stop: shutdown or lease lost."""


@dataclass(slots=True)
class JobContext:
    """What a handler gets: the engine, the job and a progress callback that also stops it."""

    engine: Engine
    job: Job
    stop: threading.Event
    lease_lost: threading.Event
    renew: Callable[[], bool] | None = None  # extends the lease now; False when it was lost

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def tick(self, *_: Any, **__: Any) -> None:
        """Call between units of work. Raises :class:`JobStopped` when the job must stop."""
        if self.lease_lost.is_set():
            raise JobStopped(f"job {self.job.id}: the lease was lost to another worker")
        if self.stop.is_set():
            raise JobStopped(f"job {self.job.id}: the worker is shutting down")

    def hold(self) -> None:
        """Renew the lease now, before a write only the lease holder may make; raises
        :class:`JobStopped` when another worker has taken the job over (a stalled worker)."""
        self.tick()
        if self.renew is not None and not self.renew():
            self.lease_lost.set()
            raise JobStopped(f"job {self.job.id}: the lease was lost to another worker")


Handler = Callable[[JobContext], Any]


# -- harvest ------------------------------------------------------------------------------------
def harvest_plan_for(settings: Settings, payload: dict[str, Any]) -> HarvestPlan:
    """The harvest plan a job payload names, as the ``ingest`` commands build them.

    ``{"source": "rss", "categories": "cs.LG+stat.ML"}``, ``{"source": "oai", "set": "cs"}``,
    ``{"source": "hf-daily"}`` (``date``/``from``/``until`` optional), ``{"source": "arxiv",
    "query": …}`` or ``"ids": […]``; any of them with ``"file": PATH`` imports a saved response.
    """
    source = str(payload.get("source", ""))
    parser = {
        "rss": "arxiv_rss",
        "oai": "arxiv_oai",
        "hf-daily": "hf_daily",
        "arxiv": "arxiv_api",
        "bibtex": "bibtex",
    }.get(source)
    if parser is None:
        raise ConfigError(
            f"harvest job: unknown source {source!r}: use rss, oai, hf-daily, arxiv or bibtex"
        )
    if payload.get("file"):
        return file_plan(parser, Path(str(payload["file"])))
    if source == "rss":
        if not payload.get("categories"):
            raise ConfigError("harvest job rss: give categories, e.g. cs.LG+stat.ML")
        return rss_plan(settings, str(payload["categories"]))
    if source == "oai":
        return oai_plan(
            settings,
            set_spec=payload.get("set"),
            from_date=payload.get("from"),
            until=payload.get("until"),
            metadata_prefix=str(payload.get("prefix", "arXiv")),
        )
    if source == "hf-daily":
        return hf_plan(
            settings,
            date=payload.get("date"),
            since=payload.get("from"),
            until=payload.get("until"),
        )
    if source == "arxiv":
        ids = [str(i) for i in payload.get("ids") or []]
        if not ids and not payload.get("query"):
            raise ConfigError("harvest job arxiv: give query or ids")
        return arxiv_plan(
            settings, query=payload.get("query"), ids=ids, max_results=payload.get("max_results")
        )
    raise ConfigError("harvest job bibtex: give file")


def run_harvest(ctx: JobContext) -> dict[str, Any]:
    plan = harvest_plan_for(ctx.engine.settings, ctx.payload)
    stored = IngestReport()

    def on_batch(_: Batch, part: IngestReport) -> None:
        stored.add(part)
        ctx.tick()  # after the batch and its checkpoint were stored: a safe place to stop

    try:
        report = ctx.engine.harvest(plan, on_batch=on_batch)
    finally:
        if stored.new or stored.updated:
            # New or changed text needs vectors; the embed job is shared by every harvest.
            ctx.engine.storage.enqueue("embed", {}, key=EMBED_KEY)
    return {k: v for k, v in report.as_dict().items() if k != "problems"} | {
        "state_key": plan.state_key
    }


def run_embed(ctx: JobContext) -> dict[str, Any]:
    """Embed the papers without a current vector, shared by every worker.

    The shared job (no payload) splits the backlog into blocks of ``embed_job_papers`` pks and
    queues one job per block (``{"pk_from": a, "pk_to": b}``, key ``embed:a``: one pending job
    per block, however often the split runs), which any worker then claims. A block job embeds
    the backlog papers of its block, storing each batch as it is done: a worker killed midway
    leaves the job to another once its lease runs out, which embeds only what was not stored yet.
    ``{"limit": N}`` embeds up to N papers in this job instead."""
    model = ctx.engine.embedder()
    if model is None:
        raise FeatureUnavailable(f"cannot embed: {ctx.engine.embed().error}")
    payload = ctx.payload
    if "pk_from" in payload or "limit" in payload:
        pk_range = None
        if "pk_from" in payload:
            pk_range = (int(payload["pk_from"]), int(payload["pk_to"]))

        def stored(done: int, _total: int) -> None:
            if done:  # after each stored batch: the job's ledger in the worker log
                log.info("job %d: %d papers embedded and stored", ctx.job.id, done)
            ctx.tick()

        report = ctx.engine.embed(
            limit=payload.get("limit"), progress=stored, pk_range=pk_range, before_write=ctx.hold
        )
        if report.error:
            raise FeatureUnavailable(f"cannot embed: {report.error}")
        return report.to_dict()
    block = max(1, ctx.engine.settings.embed_job_papers)
    blocks = ctx.engine.storage.embedding_backlog_blocks(model.name, block)
    for number in blocks:
        start = number * block
        ctx.engine.storage.enqueue(
            "embed", {"pk_from": start, "pk_to": start + block}, key=f"embed:{start}"
        )
    return {"model": model.name, "jobs": len(blocks), "papers_per_job": block}


def run_digest(ctx: JobContext) -> dict[str, Any]:
    """Send every digest due now (exactly once per subscriber and period, see docs/digest.md)."""
    report = ctx.engine.run_digests(dry_run=bool(ctx.payload.get("dry_run")))
    summary = {k: v for k, v in report.as_dict().items() if k not in ("previews", "errors")}
    if report.smtp_unavailable:
        raise TemporaryFailure("the SMTP server is unavailable; the digests left are retried")
    return summary


HANDLERS: dict[str, Handler] = {
    "harvest": run_harvest,
    "embed": run_embed,
    "digest": run_digest,
}


# -- schedules ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron expression (UTC) that enqueues one job of ``kind`` with ``payload`` when due."""

    name: str
    cron: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)

    def next_after(self, now: datetime) -> datetime:
        nxt: datetime = croniter(self.cron, now).get_next(datetime)
        return nxt


def schedules_from_settings(settings: Settings) -> list[Schedule]:
    """The schedules config turns on (an empty cron expression or target turns one off)."""
    out: list[Schedule] = []
    if settings.schedule_rss and settings.rss_categories:
        out.append(
            Schedule(
                "harvest:rss",
                settings.schedule_rss,
                "harvest",
                {"source": "rss", "categories": settings.rss_categories},
            )
        )
    if settings.schedule_oai:
        for spec in [s.strip() for s in settings.oai_sets.split(",") if s.strip()]:
            out.append(
                Schedule(
                    f"harvest:oai:{spec}",
                    settings.schedule_oai,
                    "harvest",
                    {"source": "oai", "set": spec},
                )
            )
    if settings.schedule_hf and settings.hf_daily:
        out.append(
            Schedule("harvest:hf-daily", settings.schedule_hf, "harvest", {"source": "hf-daily"})
        )
    if settings.schedule_embed:
        out.append(Schedule("embed", settings.schedule_embed, "embed"))
    if settings.schedule_digest:
        out.append(Schedule("digest", settings.schedule_digest, "digest"))
    for s in out:
        if not croniter.is_valid(s.cron):
            raise ConfigError(
                f"schedule {s.name}: {s.cron!r} is not a cron expression (5 fields, UTC)"
            )
    return out


# -- the worker ---------------------------------------------------------------------------------
def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class WorkerReport:
    done: int = 0
    failed: int = 0
    released: int = 0
    fired: list[str] = field(default_factory=list)


class Worker:
    """Claims and runs jobs of ``kinds`` and fires the schedules of the kinds it can run."""

    def __init__(
        self,
        engine: Engine,
        *,
        worker_id: str | None = None,
        kinds: Sequence[str] | None = None,
        schedules: Sequence[Schedule] | None = None,
        handlers: dict[str, Handler] | None = None,
        lease_s: float | None = None,
        poll_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.storage = engine.storage
        self.id = worker_id or default_worker_id()
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.kinds = list(kinds) if kinds else sorted(self.handlers)
        self._preload_model = bool(kinds) and "embed" in self.kinds and "embed" in self.handlers
        all_schedules = (
            schedules_from_settings(engine.settings) if schedules is None else list(schedules)
        )
        # A worker fires only what it (or a worker like it) can run: a digest schedule stays
        # quiet until a digest handler exists, instead of filling the queue.
        self.schedules = [
            s for s in all_schedules if s.kind in self.kinds and s.kind in self.handlers
        ]
        self.lease_s = lease_s if lease_s is not None else engine.settings.worker_lease_s
        self.poll_s = poll_s if poll_s is not None else engine.settings.worker_poll_s
        self.stop = threading.Event()
        self.report = WorkerReport()
        self._next_purge = 0.0

    # -- schedules --------------------------------------------------------------------------------
    def fire_due_schedules(self, now: datetime | None = None) -> list[str]:
        """Enqueue the job of every schedule due at ``now`` that this worker won the claim to."""
        now = now or datetime.now(UTC)
        fired = []
        for s in self.schedules:
            if self.storage.claim_schedule(s.name, now, s.next_after(now), self.id):
                job_id = self.storage.enqueue(s.kind, s.payload, key=f"schedule:{s.name}")
                log.info("schedule %s fired: job %d (%s)", s.name, job_id, s.kind)
                fired.append(s.name)
        self.report.fired += fired
        return fired

    # -- jobs -------------------------------------------------------------------------------------
    @contextmanager
    def _heartbeat(self, job: Job, lost: threading.Event) -> Iterator[None]:
        """Renew the lease every third of it until the job ends (or the lease is lost)."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_s / 3):
                try:
                    if not self.storage.extend_lease(job.id, self.id, self.lease_s):
                        log.warning("job %d: lease lost; stopping it at the next batch", job.id)
                        lost.set()
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    log.exception("job %d: renewing the lease failed", job.id)

        thread = threading.Thread(target=beat, name=f"lease-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    def run_job(self, job: Job) -> str:
        """Run one claimed job; returns what became of it: done, failed, released or lost."""
        handler = self.handlers.get(job.kind)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            error = f"no handler for job kind {job.kind!r} in this worker (it runs: {known})"
            log.error("job %d: %s", job.id, error)
            self.storage.fail(job.id, self.id, error)
            self.report.failed += 1
            return "failed"
        lost = threading.Event()
        ctx = JobContext(
            self.engine,
            job,
            self.stop,
            lost,
            renew=lambda: self.storage.extend_lease(job.id, self.id, self.lease_s),
        )
        started = time.monotonic()
        log.info("job %d (%s, attempt %d) started: %s", job.id, job.kind, job.attempts, job.payload)
        with self._heartbeat(job, lost):
            try:
                result = handler(ctx)
            except JobStopped as exc:
                if lost.is_set():
                    log.warning("%s", exc)
                    return "lost"
                self.storage.release(job.id, self.id)
                log.info("job %d released unfinished: %s", job.id, exc)
                self.report.released += 1
                return "released"
            except Exception as exc:
                message = (
                    str(exc) if isinstance(exc, PaperradarError) else f"{type(exc).__name__}: {exc}"
                )
                if not isinstance(exc, PaperradarError):
                    log.exception("job %d (%s) crashed", job.id, job.kind)
                else:
                    log.error("job %d (%s) failed: %s", job.id, job.kind, message)
                self.storage.fail(job.id, self.id, message)
                self.report.failed += 1
                return "failed"
        took = time.monotonic() - started
        if not self.storage.complete(job.id, self.id):
            log.warning("job %d finished after its lease was lost (%.1f s)", job.id, took)
            return "lost"
        log.info("job %d (%s) done in %.1f s: %s", job.id, job.kind, took, result)
        self.report.done += 1
        return "done"

    def purge_finished(self) -> int:
        """Delete done and failed jobs older than ``worker_keep_jobs_days`` (at most hourly)."""
        if time.monotonic() < self._next_purge:
            return 0
        self._next_purge = time.monotonic() + 3600
        keep = timedelta(days=self.engine.settings.worker_keep_jobs_days)
        n = self.storage.purge_jobs(datetime.now(UTC) - keep)
        if n:
            log.info("purged %d finished jobs older than %s", n, keep)
        return n

    def run_once(self) -> bool:
        """Fire due schedules and run at most one job; False when there was nothing to run."""
        self.fire_due_schedules()
        self.purge_finished()
        if self.stop.is_set():
            return False
        jobs = self.storage.claim(self.kinds, self.id, self.lease_s)
        for job in jobs:
            self.run_job(job)
        return bool(jobs)

    def run(self, *, once: bool = False) -> WorkerReport:
        """Work until stopped (``once``: until no job is due, for cron)."""
        log.info(
            "worker %s: kinds %s, schedules %s",
            self.id,
            ",".join(self.kinds),
            ", ".join(f"{s.name} [{s.cron}]" for s in self.schedules) or "none",
        )
        if self._preload_model:
            # A worker asked to embed loads the model before it holds a lease: building or
            # loading it takes seconds (a minute with several workers starting at once on a
            # busy machine), which would eat into the first job's lease.
            started = time.monotonic()
            model = self.engine.embedder()
            log.info(
                "worker %s: embedding model %s loaded in %.1f s",
                self.id,
                model.name if model is not None else "unavailable",
                time.monotonic() - started,
            )
        while not self.stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # the database went away: wait and retry
                if once:
                    raise
                log.error("worker %s: %s; retrying in %.0f s", self.id, exc, self.poll_s)
                busy = False
            if not busy:
                if once:
                    break
                self.stop.wait(self.poll_s)
        log.info(
            "worker %s stopped: %d done, %d failed, %d released",
            self.id,
            self.report.done,
            self.report.failed,
            self.report.released,
        )
        return self.report

    # -- signals ----------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the current batch, release the job, exit. A second: exit now."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: %s received, stopping", self.id, signal.Signals(signum).name)
            self.stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

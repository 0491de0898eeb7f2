"""The ``paperradar`` command. Each command is a few lines calling the Engine.

Exit codes: 0 success, 1 some input was rejected (everything good was kept), 2 error.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from paperradar.config import load_settings
from paperradar.engine import Engine, bench_ir, make_engine
from paperradar.errors import PaperradarError
from paperradar.export import FORMATS
from paperradar.harvest import (
    HarvestPlan,
    arxiv_plan,
    enrich_plan,
    file_plan,
    hf_plan,
    oai_plan,
    rss_plan,
    snapshot_plan,
)
from paperradar.ingest import IngestReport
from paperradar.model import paper_to_dict
from paperradar.search.service import MODES, SearchResult
from paperradar.sources import Batch

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


class _Group(TyperGroup):
    """Prints our errors as one line on stderr (exit 2) instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PaperradarError as exc:
            err.print(f"error: {_one_line(str(exc))}")
            raise typer.Exit(2) from exc


def _one_line(message: str) -> str:
    """Driver messages span lines and carry SQLAlchemy's help links; the CLI prints one line."""
    message = re.sub(r"\(Background on this error at: [^)]*\)", "", message)
    return " ".join(message.split())


app = typer.Typer(
    cls=_Group,
    name="paperradar",
    help="Self-hosted research-paper discovery: ingest, search, trending, daily digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(help="Ingest papers from a source.", no_args_is_help=True)
bench_app = typer.Typer(help="Measure quality and speed.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(bench_app, name="bench")
index_app = typer.Typer(
    help="The search indexes: vectors, and the keyword index on SQLite.", no_args_is_help=True
)
app.add_typer(index_app, name="index")
digest_app = typer.Typer(
    help="Email digests: send the due ones, preview one.", no_args_is_help=True
)
app.add_typer(digest_app, name="digest")


class State:
    db: str | None = None


state = State()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.callback()
def _root(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL or SQLite path (default: PAPERRADAR_DATABASE_URL).",
            metavar="URL",
        ),
    ] = None,
) -> None:
    state.db = db


def engine() -> Engine:
    return make_engine(state.db)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def _live(*columns: Any) -> Iterator[Progress | None]:
    """A transient display on stderr (the task's label, then ``columns``) when it is a terminal;
    None otherwise, so that scripts and pipes get no progress output."""
    if not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"), *columns, console=err, transient=True
    ) as bar:
        yield bar


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    """A live counter of ingested records on a terminal; silent otherwise."""
    with _live(BarColumn(), TextColumn("{task.completed:,} records"), TimeElapsedColumn()) as bar:
        if bar is None:
            yield None
            return
        task = bar.add_task(label, total=None)

        def on_batch(batch: Batch, part: IngestReport) -> None:
            bar.advance(task, part.read)

        yield on_batch


@contextmanager
def _file_progress(label: str, size: int) -> Iterator[tuple[Any, Any]]:
    """A real bar over a big file's bytes (speed, time left, records so far) on a terminal;
    yields ``(on_batch, on_bytes)``, both None when stderr is not a terminal."""
    with _live(
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[records]:,} records"),
        TimeRemainingColumn(),
    ) as bar:
        if bar is None:
            yield None, None
            return
        task = bar.add_task(label, total=max(size, 1), records=0)
        records = 0

        def on_batch(batch: Batch, part: IngestReport) -> None:
            nonlocal records
            records += part.read
            bar.update(task, records=records)

        def on_bytes(done: int) -> None:
            bar.update(task, completed=done)

        yield on_batch, on_bytes


def _report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        _print_json(report.as_dict())
    else:
        out.print(
            f"read {report.read:,}  new {report.new:,}  updated {report.updated:,}  "
            f"unchanged {report.unchanged:,}  rejected {report.rejected:,}"
            + (f"  skipped {report.skipped:,}" if report.skipped else "")
        )
        for p in report.problems[:50]:
            err.print(f"rejected: {p}")
        if len(report.problems) > 50:
            err.print(f"… and {report.rejected - 50:,} more rejected")
    if report.rejected:
        raise typer.Exit(1)


@ingest_app.command("pages")
def ingest_pages(
    files: Annotated[list[Path], typer.Argument(help="Page dump text files.")],
    as_json: JsonOpt = False,
) -> None:
    """Ingest page dumps: listing pages saved as text (a title line, then an abstract line)."""
    with engine() as eng, _progress("pages") as cb:
        report = eng.ingest_pages(files, on_batch=cb)
    _report(report, as_json)


@ingest_app.command("jsonl")
def ingest_jsonl(
    file: Annotated[
        Path, typer.Argument(help="A JSON-lines file as written by `export --format jsonl`.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Ingest our JSON-lines format (one paper object per line; .gz accepted)."""
    with engine() as eng, _progress("jsonl") as cb:
        report = eng.ingest_jsonl(file, on_batch=cb)
    _report(report, as_json)


FileOpt = Annotated[
    Path | None,
    typer.Option("--file", help="Import a saved response file instead of fetching (offline)."),
]


def _harvest(plan: HarvestPlan, label: str, as_json: bool) -> None:
    with engine() as eng, _progress(label) as cb:
        report = eng.harvest(plan, on_batch=cb)
    _report(report, as_json)


@ingest_app.command("arxiv")
def ingest_arxiv(
    query: Annotated[
        str | None,
        typer.Option(
            "--query", "-q", help="arXiv API search_query, e.g. 'cat:cs.LG AND ti:diffusion'."
        ),
    ] = None,
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="arXiv ids (repeat or comma-separate).")
    ] = None,
    max_results: Annotated[int | None, typer.Option("--max-results", min=1)] = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """arXiv API (Atom): a search query or an id list, paged politely (3 s between requests)."""
    if file is not None:
        return _harvest(file_plan("arxiv_api", file), "arxiv", as_json)
    id_list = [i.strip() for raw in ids or [] for i in raw.split(",") if i.strip()]
    if not query and not id_list:
        raise PaperradarError("give --query, --ids or --file")
    _harvest(
        arxiv_plan(load_settings(), query=query, ids=id_list, max_results=max_results),
        "arxiv",
        as_json,
    )


@ingest_app.command("oai")
def ingest_oai(
    set_spec: Annotated[
        str | None, typer.Option("--set", help="OAI set, e.g. cs or physics:hep-th.")
    ] = None,
    from_date: Annotated[
        str | None, typer.Option("--from", help="YYYY-MM-DD (default: the last watermark).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="YYYY-MM-DD")] = None,
    metadata_prefix: Annotated[
        str, typer.Option("--prefix", help="arXiv | arXivRaw | oai_dc")
    ] = "arXiv",
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """arXiv OAI-PMH ListRecords, incremental from the stored watermark, resumable."""
    if file is not None:
        return _harvest(file_plan("arxiv_oai", file), "oai", as_json)
    plan = oai_plan(
        load_settings(),
        set_spec=set_spec,
        from_date=from_date,
        until=until,
        metadata_prefix=metadata_prefix,
    )
    _harvest(plan, "oai", as_json)


@ingest_app.command("rss")
def ingest_rss(
    categories: Annotated[
        str | None, typer.Argument(help="Categories joined by +, e.g. cs.LG+stat.ML")
    ] = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """arXiv RSS/Atom new-submission feeds (new / cross / replace announcements)."""
    if file is not None:
        return _harvest(file_plan("arxiv_rss", file), "rss", as_json)
    if not categories:
        raise PaperradarError("give categories (e.g. cs.LG+stat.ML) or --file")
    _harvest(rss_plan(load_settings(), categories), "rss", as_json)


@ingest_app.command("hf-daily")
def ingest_hf_daily(
    date: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today).")] = None,
    since: Annotated[str | None, typer.Option("--from", help="First day of a range.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day of a range.")] = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hugging Face daily papers: upvotes, comments, GitHub stars, project pages."""
    if file is not None:
        return _harvest(file_plan("hf_daily", file), "hf-daily", as_json)
    _harvest(hf_plan(load_settings(), date=date, since=since, until=until), "hf-daily", as_json)


@ingest_app.command("snapshot")
def ingest_snapshot(
    file: Annotated[Path, typer.Argument(help="arxiv-metadata-oai-snapshot.json (.gz/.zip too).")],
    as_json: JsonOpt = False,
) -> None:
    """The bulk arXiv metadata snapshot (JSON lines), streamed in constant memory, resumable."""
    if not file.is_file():
        raise PaperradarError(f"{file}: no such file")
    with (
        _file_progress("snapshot", file.stat().st_size) as (on_batch, on_bytes),
        engine() as eng,
    ):
        report = eng.harvest(snapshot_plan(file, progress=on_bytes), on_batch=on_batch)
    _report(report, as_json)


@ingest_app.command("bibtex")
def ingest_bibtex(
    file: Annotated[Path, typer.Argument(help="A .bib export (BibTeX, BibLaTeX, Zotero).")],
    as_json: JsonOpt = False,
) -> None:
    """A BibTeX/BibLaTeX/Zotero library; entries without ids are kept under a title key."""
    _harvest(file_plan("bibtex", file), "bibtex", as_json)


@app.command()
def enrich(
    service: Annotated[str, typer.Option(help="semantic_scholar | openalex")] = "semantic_scholar",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many papers.")] = None,
    refresh: Annotated[bool, typer.Option(help="Also papers that already have counts.")] = False,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Citation counts from Semantic Scholar or OpenAlex, batched and rate-limited."""
    if service not in ("semantic_scholar", "openalex"):
        raise PaperradarError("--service must be semantic_scholar or openalex")
    if file is not None:
        return _harvest(file_plan(service, file), "enrich", as_json)
    with engine() as eng:
        ids = eng.enrich_ids(limit=limit, refresh=refresh)
    _harvest(enrich_plan(load_settings(), service, ids), "enrich", as_json)


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Counts: papers, embeddings, sources."""
    with engine() as eng:
        data = eng.stats()
    if as_json:
        _print_json(data)
        return
    for k, v in data.items():
        out.print(f"{k:>18}: {v}")


def _hit_dict(result: SearchResult) -> list[dict[str, Any]]:
    return [
        {
            "id": h.paper.id,
            "title": h.paper.title,
            "score": h.score if h.score != float("inf") else None,
            "matched_by": h.matched_by,
            "authors": h.paper.author_names,
            "published": h.paper.published.isoformat() if h.paper.published else None,
            "url": h.paper.abs_url,
        }
        for h in result.hits
    ]


@app.command()
def search(
    query: Annotated[
        str,
        typer.Argument(
            help='Query: terms, "phrases", -exclusions, author:, cat:, year:2020..2024, since:7d'
        ),
    ],
    limit: Annotated[int, typer.Option("--limit", "-k", min=1, max=200)] = 10,
    mode: Annotated[str | None, typer.Option("--mode", help="keyword | semantic | hybrid")] = None,
    sort: Annotated[str, typer.Option("--sort", help="relevance | date")] = "relevance",
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Next-page cursor from a previous result.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search papers by keyword and meaning."""
    if mode is not None and mode not in MODES:
        raise PaperradarError(f"unknown --mode {mode!r}: use one of {', '.join(MODES)}")
    if sort not in ("relevance", "date"):
        raise PaperradarError(f"unknown --sort {sort!r}: use relevance or date")
    with engine() as eng:
        result = eng.search(query, mode=mode, sort=sort, limit=limit, cursor=cursor)  # type: ignore[arg-type]
    if as_json:
        _print_json(_hit_dict(result))
        if result.notice:
            err.print(f"note: {result.notice}")
        return
    if result.notice:
        err.print(f"note: {result.notice}")
    if not result.hits:
        out.print("no papers matched")
        return
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("#", justify="right")
    table.add_column("id")
    table.add_column("title")
    table.add_column("score", justify="right")
    for i, h in enumerate(result.hits, 1):
        score = "pinned" if h.score == float("inf") else f"{h.score:.3f}"
        table.add_row(str(i), h.paper.id, h.paper.title, score)
    out.print(table)
    if result.next_cursor:
        err.print(f"more: --cursor {result.next_cursor}")


@app.command()
def show(
    paper_id: Annotated[str, typer.Argument(help="arXiv id, DOI or URL")], as_json: JsonOpt = False
) -> None:
    """Show one paper."""
    with engine() as eng:
        paper = eng.paper(paper_id)
    if as_json:
        _print_json(paper_to_dict(paper))
        return
    out.print(paper.title, style="bold")
    if paper.authors:
        out.print(", ".join(paper.author_names))
    meta = [paper.id]
    if paper.published:
        meta.append(paper.published.date().isoformat())
    if paper.categories:
        meta.append(" ".join(paper.categories))
    out.print(" · ".join(meta), style="dim")
    if paper.abstract:
        out.print()
        out.print(paper.abstract)
    if paper.abs_url:
        out.print()
        out.print(paper.abs_url)


@app.command()
def export(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="jsonl | csv | bibtex | ris | csl-json")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Export every paper."""
    if fmt not in FORMATS:
        raise PaperradarError(f"unknown --format {fmt!r}: use one of {', '.join(FORMATS)}")
    with engine() as eng:
        chunks = eng.export(fmt)
        if output is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
        else:
            tmp = output.with_name(output.name + ".part")
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            tmp.replace(output)


@app.command()
def sources(as_json: JsonOpt = False) -> None:
    """Per source: last run, watermark, papers seen/new/updated, last error."""
    with engine() as eng:
        states = eng.sources()
    rows: list[dict[str, Any]] = [
        {
            "source": s.source,
            "last_run": s.last_run.isoformat() if s.last_run else None,
            "checkpoint": s.checkpoint,
            "seen": s.seen,
            "new": s.new,
            "updated": s.updated,
            "rejected": s.rejected,
            "last_error": s.last_error,
        }
        for s in states
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table(box=None, header_style="bold")
    table.add_column("source", no_wrap=True)  # names and times are never cut short
    table.add_column("last run", no_wrap=True)
    for col in ("seen", "new", "updated", "rejected"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("watermark", overflow="fold", min_width=9)
    table.add_column("last error", overflow="fold", min_width=10)
    for r in rows:
        table.add_row(
            r["source"],
            (r["last_run"] or "-")[:16].replace("T", " "),
            str(r["seen"]),
            str(r["new"]),
            str(r["updated"]),
            str(r["rejected"]),
            json.dumps(r["checkpoint"])[:40],
            (r["last_error"] or "")[:60],
        )
    out.print(table)


@app.command("config")
def show_config(as_json: JsonOpt = False) -> None:
    """Print the effective settings (secrets masked)."""
    data = load_settings().redacted()
    if state.db:
        data["database_url"] = state.db
    if as_json:
        _print_json(data)
        return
    for k, v in data.items():
        out.print(f"{k} = {v}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Web processes sharing the port (stateless; behind any proxy)."
        ),
    ] = 1,
) -> None:
    """Serve the web UI, JSON API and feeds."""
    _serve(host, port, workers)


def _check_port_free(host: str, port: int) -> None:
    """Fail with one clear line (exit 2) before announcing a URL nobody will answer on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PaperradarError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as exc:
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc}"
            raise PaperradarError(
                f"cannot serve on http://{host}:{port}: the address {why} "
                "(is paperradar already running? choose another with --port)"
            ) from exc


def _serve(host: str | None, port: int | None, workers: int = 1) -> None:
    import os

    import uvicorn

    from paperradar.web import create_app

    settings = load_settings()
    h, p = host or settings.host, port or settings.port
    _check_port_free(h, p)
    if workers > 1:
        import shutil
        import tempfile

        from paperradar.metrics import METRICS_DIR_ENV

        # Each process builds its own app (and database pool) from the environment.
        eng = engine()
        os.environ["PAPERRADAR_DATABASE_URL"] = eng.storage.url  # migrated once, here
        eng.close()
        # The processes' search-latency histograms meet in one folder, so /metrics reports all.
        own_dir = not os.environ.get(METRICS_DIR_ENV)
        if own_dir:
            os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="paperradar-metrics-")
        else:
            for stale in Path(os.environ[METRICS_DIR_ENV]).glob("*.json"):
                stale.unlink()  # an earlier run's processes
        err.print(f"paperradar is serving on http://{h}:{p} with {workers} processes")
        try:
            uvicorn.run(
                "paperradar.web.app:create_app_from_env",
                factory=True,
                host=h,
                port=p,
                workers=workers,
                log_level="warning",
                proxy_headers=True,
            )
        finally:
            if own_dir:
                shutil.rmtree(os.environ.pop(METRICS_DIR_ENV), ignore_errors=True)
        return
    eng = engine()
    err.print(f"paperradar is serving on http://{h}:{p}  (Ctrl-C to stop)")
    uvicorn.run(create_app(eng), host=h, port=p, log_level="warning")


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Fire due schedules, run the due jobs, then exit (cron).")
    ] = False,
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Worker name in the queue (default host:pid).")
    ] = None,
    kinds: Annotated[
        list[str] | None,
        typer.Option(
            "--kinds", help="Job kinds to run (repeat or comma-separate; default: all known)."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log warnings and errors only, not every job.")
    ] = False,
) -> None:
    """Run queued jobs (harvest, …) and fire the cron schedules of config; many may share a database."""
    import logging

    from paperradar.worker import Worker

    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    kind_list = [k.strip() for raw in kinds or [] for k in raw.split(",") if k.strip()]
    with engine() as eng:
        w = Worker(eng, worker_id=worker_id, kinds=kind_list or None)
        w.install_signal_handlers()
        report = w.run(once=once)
    if once:
        out.print(
            f"done {report.done}  failed {report.failed}  released {report.released}  "
            f"schedules fired {len(report.fired)}"
        )


@app.command()
def enqueue(
    kind: Annotated[str, typer.Argument(help="Job kind: harvest, embed, digest.")],
    payload: Annotated[
        str, typer.Argument(help='JSON payload, e.g. \'{"source": "oai", "set": "cs"}\'.')
    ] = "{}",
    key: Annotated[
        str | None, typer.Option("--key", help="Dedupe key: one pending job per key.")
    ] = None,
) -> None:
    """Queue a job for `paperradar worker` (e.g. a backfill harvest)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise PaperradarError(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PaperradarError("payload must be a JSON object")
    with engine() as eng:
        out.print(f"job {eng.enqueue(kind, data, key=key)} queued ({kind})")


@app.command()
def jobs(as_json: JsonOpt = False) -> None:
    """The job queue: jobs per kind and state."""
    with engine() as eng:
        rows = eng.jobs()
    if as_json:
        _print_json([{"kind": k, "state": s, "jobs": n} for k, s, n in rows])
        return
    table = Table(box=None, header_style="bold")
    for col in ("kind", "state", "jobs"):
        table.add_column(col, justify="right" if col == "jobs" else "left")
    for k, s, n in rows:
        table.add_row(k, s, f"{n:,}")
    out.print(table)


@app.command("migrate-data")
def migrate_data(
    src_url: Annotated[str, typer.Argument(metavar="SRC_URL", help="Copy from this database.")],
    dst_url: Annotated[str, typer.Argument(metavar="DST_URL", help="Into this (empty) database.")],
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Papers or vectors per transaction.")
    ] = 2000,
    as_json: JsonOpt = False,
) -> None:
    """Copy every paper, source state and vector between databases (SQLite <-> PostgreSQL),
    resumable (run it again after a stop), verified by counts and checksums."""
    from paperradar.transfer import copy_collection, iter_table, verify_collection

    with make_engine(src_url) as src, make_engine(dst_url) as dst, _stages() as tick:
        written = copy_collection(src.storage, dst.storage, progress=tick, batch_size=batch_size)
        rows = verify_collection(src.storage, dst.storage, progress=tick)
    if as_json:
        _print_json(
            {
                "written": written,
                "checks": [
                    {
                        "what": r.what,
                        "source": r.src_count,
                        "destination": r.dst_count,
                        "source_checksum": r.src_checksum,
                        "destination_checksum": r.dst_checksum,
                        "ok": r.ok,
                    }
                    for r in rows
                ],
            }
        )
    else:
        out.print(
            f"copied {written['papers']:,} papers, {written['vectors']:,} vectors, "
            f"{written['source_states']:,} source states in this run"
        )
        table = Table(box=None, header_style="bold")
        for col in ("what", "source", "destination", "source sum", "destination sum", "check"):
            table.add_column(col, justify="right" if col in ("source", "destination") else "left")
        for row in iter_table(rows):
            table.add_row(*row)
        out.print(table)
    if not all(r.ok for r in rows):
        err.print("error: the copy differs from the source (see the table); run it again")
        raise typer.Exit(2)


@contextmanager
def _stages() -> Iterator[Any]:
    """A progress bar per stage (stage, done, total) on a terminal; silent otherwise."""
    with _live(
        BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"), TimeElapsedColumn()
    ) as bar:
        if bar is None:
            yield None
            return
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield tick


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only ingest, do not serve.")
    ] = False,
    no_embed: Annotated[
        bool,
        typer.Option("--no-embed", help="Skip embedding (search is keyword-only until `embed`)."),
    ] = False,
) -> None:
    """Create the database, ingest the bundled demo corpus, embed it, and serve the web UI."""
    if not no_serve:
        settings = load_settings()
        _check_port_free(host or settings.host, port or settings.port)
    with engine() as eng:
        with _progress("demo corpus") as cb:
            report = eng.ingest_demo(on_batch=cb)
        total = eng.stats()["papers"]
        out.print(
            f"demo corpus: {report.new:,} new, {report.unchanged + report.updated:,} known; {total:,} papers in {eng.storage.url}"
        )
        if not no_embed:
            with _bar("embedding", "papers") as bar:
                embedded = eng.embed(progress=bar)
            if embedded.error:
                err.print(f"warning: search stays keyword-only: {embedded.error}")
            else:
                out.print(
                    f"embeddings: {embedded.total_vectors:,} of {total:,} papers "
                    f"({embedded.embedded:,} new, {embedded.model}): semantic and hybrid search on"
                )
    if not no_serve:
        _serve(host, port)


@bench_app.command("ir")
def bench_ir_cmd(
    folder: Annotated[
        Path, typer.Argument(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    ],
    split: Annotated[str, typer.Option(help="test | train | dev")] = "test",
    mode: Annotated[str, typer.Option(help="keyword | semantic | hybrid")] = "keyword",
    store: Annotated[
        str | None,
        typer.Option(
            help="Load into this empty database (e.g. postgresql://…) instead of a temporary "
            "SQLite file, to measure that backend's ranking."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrieval quality (nDCG@10, Recall@100, MRR@10) and speed on a BEIR benchmark."""
    if mode not in MODES:
        raise PaperradarError(f"unknown --mode {mode!r}: use one of {', '.join(MODES)}")
    with _bar("bench", "") as cb:

        def on_step(stage: str, done: int, total: int) -> None:
            if cb is not None:
                cb(done, total)

        result = bench_ir(folder, split=split, mode=mode, progress=on_step, store=store)
    if as_json:
        _print_json(result)
        return
    for k, v in result.items():
        out.print(f"{k:>14}: {v}")


@contextmanager
def _bar(label: str, unit: str) -> Iterator[Any]:
    """A progress bar with ETA on a terminal (``callback(done, total)``); silent otherwise."""
    with _live(
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} " + unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as bar:
        if bar is None:
            yield None
            return
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command()
def embed(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Embed at most this many papers.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed papers that have no current vector (resumable: re-run to continue)."""
    with engine() as eng, _bar("embedding", "papers") as cb:
        report = eng.embed(limit=limit, progress=cb)
    if as_json:
        _print_json(report.to_dict())
    else:
        out.print(
            f"embedded {report.embedded:,} papers in {report.seconds:.1f} s "
            f"({report.docs_per_s:.1f}/s) with {report.model}; {report.total_vectors:,} vectors, "
            f"{report.remaining:,} papers without one"
        )
    if report.error:
        raise PaperradarError(f"cannot embed: {report.error}")


class IndexPart(enum.StrEnum):
    vectors = "vectors"
    keyword = "keyword"
    all = "all"


@index_app.command("rebuild")
def index_rebuild(
    what: Annotated[
        IndexPart,
        typer.Option("--what", help="vectors, keyword (the SQLite keyword index) or all"),
    ] = IndexPart.vectors,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the vector index from the stored embeddings, and/or the keyword index."""
    result: dict[str, Any] = {}
    with engine() as eng:
        if what in (IndexPart.keyword, IndexPart.all):
            started = time.perf_counter()
            with _bar("keyword index", "papers") as cb:
                count = eng.rebuild_keyword_index(progress=cb)
            result["keyword"] = {
                "papers": count,
                "seconds": round(time.perf_counter() - started, 3),
            }
            if not as_json:
                out.print(
                    f"keyword index of {count:,} papers in {result['keyword']['seconds']:.1f} s"
                )
        if what in (IndexPart.vectors, IndexPart.all):
            with _bar("indexing", "vectors") as cb:
                info = eng.rebuild_index(progress=cb)
            result.update(dataclasses.asdict(info))
            if not as_json:
                where = f" in {info.path}" if info.path else ""
                out.print(f"{info.kind} index of {info.vectors:,} {info.model} vectors{where}")
    if as_json:
        _print_json(result)


@app.command()
def similar(
    paper_id: Annotated[str, typer.Argument(help="arXiv id, DOI or URL")],
    limit: Annotated[int, typer.Option("--limit", "-k", min=1, max=200)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Papers like this one (by embeddings; by keywords until they are built)."""
    with engine() as eng:
        hits = eng.similar(paper_id, limit=limit)
    rows = [
        {
            "id": h.paper.id,
            "title": h.paper.title,
            "score": h.score,
            "matched_by": h.matched_by,
            "url": h.paper.abs_url,
        }
        for h in hits
    ]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no similar papers found")
        return
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("#", justify="right")
    table.add_column("id")
    table.add_column("title")
    table.add_column("score", justify="right")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), h.paper.id, h.paper.title, f"{h.score:.3f}")
    out.print(table)


@app.command()
def trending(
    window: Annotated[str, typer.Option("--window", help="day | week | month")] = "week",
    limit: Annotated[int, typer.Option("--limit", "-k", min=1, max=500)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The most trending papers of a window (upvotes, comments, stars, citations, our readers'
    clicks and saves, decayed by age)."""
    if window not in ("day", "week", "month"):
        raise PaperradarError(f"unknown --window {window!r}: use day, week or month")
    with engine() as eng:
        ranked = eng.trending_scores(window=window, limit=limit)  # type: ignore[arg-type]
    if as_json:
        _print_json([paper_to_dict(p) | {"trending_score": round(s, 6)} for p, s in ranked])
        return
    if not ranked:
        out.print(f"no papers in the last {window}")
        return
    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("#", "id", "title", "upvotes", "stars", "score"):
        table.add_column(
            col, justify="right" if col in ("#", "upvotes", "stars", "score") else "left"
        )
    for i, (p, score) in enumerate(ranked, 1):
        table.add_row(
            str(i), p.id, p.title, str(p.upvotes or ""), str(p.stars or ""), f"{score:.3f}"
        )
    out.print(table)


@app.command()
def subscribe(
    email: Annotated[str, typer.Argument(help="The address to send digests to.")],
    query: Annotated[
        list[str] | None, typer.Option("--query", "-q", help="An interest query (repeatable).")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", "-c", help="A category (repeatable).")
    ] = None,
    author: Annotated[
        list[str] | None, typer.Option("--author", help="An author to follow (repeatable).")
    ] = None,
    follow: Annotated[
        list[str] | None, typer.Option("--follow", help="A paper id to follow (repeatable).")
    ] = None,
    bibtex: Annotated[
        Path | None, typer.Option("--bibtex", help="A BibTeX library to use as a profile.")
    ] = None,
    trending_only: Annotated[
        bool, typer.Option("--trending", help="Include (or only get) the trending list.")
    ] = False,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone.")] = "UTC",
    frequency: Annotated[str, typer.Option("--frequency", help="daily | weekly")] = "daily",
    hour: Annotated[int, typer.Option("--hour", min=0, max=23, help="Local send hour.")] = 7,
    max_items: Annotated[int, typer.Option("--max-items", min=1, max=100)] = 20,
    no_weekends: Annotated[
        bool, typer.Option("--no-weekends", help="No daily digest on Saturday and Sunday.")
    ] = False,
) -> None:
    """Subscribe an address (records the request and mails the confirmation link)."""
    if frequency not in ("daily", "weekly"):
        raise PaperradarError(f"unknown --frequency {frequency!r}: use daily or weekly")
    data = None
    if bibtex is not None:
        try:
            data = bibtex.read_bytes()
        except OSError as exc:
            raise PaperradarError(f"cannot read {bibtex}: {exc.strerror or exc}") from exc
    with engine() as eng:
        message = eng.subscribe(
            email,
            queries=query or [],
            categories=category or [],
            authors=author or [],
            follow=follow or [],
            bibtex=data,
            trending=trending_only,
            frequency=frequency,
            send_hour=hour,
            timezone=timezone,
            max_items=max_items,
            weekends=not no_weekends,
        )
    out.print(message)


def _parse_at(value: str | None) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PaperradarError(
            f"--at {value!r} is not an ISO date-time like 2026-12-01T07:00:00+01:00"
        ) from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@digest_app.command("run")
def digest_run(
    at: Annotated[
        str | None,
        typer.Option("--at", help="Act as if it were this ISO date-time (UTC if naive)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compose and list, send and record nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send every digest due now (or at --at), exactly once per subscriber and period."""
    when = _parse_at(at)
    with engine() as eng:
        report = eng.run_digests(at=when, dry_run=dry_run)
    data = report.as_dict()
    if as_json:
        _print_json(data)
    else:
        out.print(
            f"due {report.due}  sent {report.sent}  already sent {report.already_sent}  "
            f"held by another runner {report.held_elsewhere}  "
            f"temporary failures {report.temporary_failures}  "
            f"permanent failures {report.permanent_failures}  paused {report.paused}"
        )
        for preview in report.previews:
            out.print(f"{preview['email']} {preview['period']}: {len(preview['items'])} papers")
            for item in preview["items"]:
                out.print(f"  {item['id']}  {item['title']}  ({'; '.join(item['reasons'])})")
        for line in report.errors[:20]:
            err.print(f"failed: {line}")
    if report.smtp_unavailable:
        err.print("error: the SMTP server is unavailable; run again later to send the rest")
        raise typer.Exit(2)


@digest_app.command("preview")
def digest_preview(
    email: Annotated[str, typer.Argument(help="A subscribed address.")],
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part instead.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="ISO date-time (default now).")] = None,
) -> None:
    """Render the digest an address would get now (nothing is sent or recorded)."""
    with engine() as eng:
        parts = eng.preview_digest(email, at=_parse_at(at))
    sys.stdout.write(parts.html if html else f"Subject: {parts.subject}\n\n{parts.text}")


def main() -> None:
    app()

"""Harvest plans: which fetcher or parser serves each source, under which state key.

Each plan turns the source's stored checkpoint into a stream of batches; the engine stores each
batch with its checkpoint in one transaction, so a killed run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperradar.config import Settings
from paperradar.errors import SourceError
from paperradar.model import ParseProblem
from paperradar.sources import Batch, Record, records_to_batches
from paperradar.sources.arxiv_api import fetch_arxiv, parse_arxiv_atom
from paperradar.sources.arxiv_oai import fetch_oai, parse_oai_page
from paperradar.sources.arxiv_rss import fetch_arxiv_rss, parse_arxiv_rss
from paperradar.sources.arxiv_snapshot import snapshot_batches
from paperradar.sources.bibtex import parse_bibtex
from paperradar.sources.enrich import (
    fetch_openalex,
    fetch_semantic_scholar,
    parse_openalex,
    parse_semantic_scholar,
)
from paperradar.sources.hf_daily import fetch_hf_daily, parse_hf_daily
from paperradar.sources.http import PoliteClient

__all__ = [
    "HarvestPlan",
    "arxiv_plan",
    "enrich_plan",
    "file_plan",
    "hf_plan",
    "network_plan",
    "oai_plan",
    "rss_plan",
    "snapshot_plan",
]

Checkpoint = Mapping[str, Any] | None
Fetch = Callable[[PoliteClient, Checkpoint], Iterator[Batch]]


@dataclass(slots=True)
class HarvestPlan:
    """Where a run's state lives and how to produce its batches from the last checkpoint."""

    state_key: str
    batches: Callable[[Checkpoint], Iterable[Batch]]


PARSERS: dict[str, Callable[[bytes, str], Iterator[Record]]] = {
    "arxiv_api": parse_arxiv_atom,
    "arxiv_oai": lambda data, loc: iter(parse_oai_page(data, loc).records),
    "arxiv_rss": parse_arxiv_rss,
    "hf_daily": parse_hf_daily,
    "bibtex": parse_bibtex,
    "semantic_scholar": lambda data, loc: parse_semantic_scholar(data, loc),
    "openalex": parse_openalex,
}


def file_plan(source: str, path: Path) -> HarvestPlan:
    """A saved response or export file, parsed offline; bad files become one rejected record."""
    parse = PARSERS[source]

    def batches(_: Checkpoint) -> Iterator[Batch]:
        try:
            data = path.read_bytes()
            records = list(parse(data, str(path)))
        except OSError as exc:
            records = [
                ParseProblem(source, str(path), f"cannot read the file: {exc.strerror or exc}")
            ]
        except SourceError as exc:
            records = [ParseProblem(source, exc.location or str(path), exc.reason)]
        yield from records_to_batches(source, iter(records), location=str(path))

    return HarvestPlan(f"{source}:file", batches)


def network_plan(
    source: str,
    settings: Settings,
    key: str,
    fetch: Fetch,
    *,
    finished: Callable[[Mapping[str, Any]], bool] | None = None,
) -> HarvestPlan:
    """``finished(checkpoint)`` says a stored run was complete, so this run starts from the top
    (an API query or an enrichment pass) instead of resuming."""

    def batches(checkpoint: Checkpoint) -> Iterator[Batch]:
        if checkpoint and finished is not None and finished(checkpoint):
            checkpoint = None
        with PoliteClient(settings) as client:
            yield from fetch(client, checkpoint)

    return HarvestPlan(f"{source}:{key}" if key else source, batches)


def _api_done(cp: Mapping[str, Any]) -> bool:
    total = cp.get("total")
    return total is not None and int(cp.get("start", 0)) >= int(total)


def arxiv_plan(
    settings: Settings, *, query: str | None, ids: Sequence[str], max_results: int | None
) -> HarvestPlan:
    key = f"ids={','.join(ids)}" if ids else f"query={query}"
    return network_plan(
        "arxiv_api",
        settings,
        key,
        lambda c, cp: fetch_arxiv(
            c, settings, query=query, ids=list(ids) or None, max_results=max_results, checkpoint=cp
        ),
        finished=_api_done,
    )


def oai_plan(
    settings: Settings,
    *,
    set_spec: str | None,
    from_date: str | None,
    until: str | None,
    metadata_prefix: str,
) -> HarvestPlan:
    return network_plan(
        "arxiv_oai",
        settings,
        set_spec or "all",
        lambda c, cp: fetch_oai(
            c,
            settings,
            metadata_prefix=metadata_prefix,
            set_spec=set_spec,
            from_date=from_date,
            until=until,
            checkpoint=cp,
        ),
    )


def rss_plan(settings: Settings, categories: str) -> HarvestPlan:
    cats = [c for c in categories.replace(",", "+").split("+") if c]
    return network_plan(
        "arxiv_rss",
        settings,
        "+".join(cats),
        lambda c, cp: fetch_arxiv_rss(c, settings, categories=cats, checkpoint=cp),
    )


def hf_plan(
    settings: Settings, *, date: str | None, since: str | None, until: str | None
) -> HarvestPlan:
    return network_plan(
        "hf_daily",
        settings,
        "",
        lambda c, cp: fetch_hf_daily(
            c, settings, date=date, since=since, until=until, checkpoint=None if date else cp
        ),
    )


def enrich_plan(settings: Settings, service: str, ids: Sequence[str]) -> HarvestPlan:
    if service == "semantic_scholar":
        fetch: Fetch = lambda c, cp: fetch_semantic_scholar(c, settings, list(ids), checkpoint=cp)  # noqa: E731
    else:
        fetch = lambda c, cp: fetch_openalex(c, settings, list(ids), checkpoint=cp)  # noqa: E731
    n = len(ids)
    return network_plan(
        service, settings, "enrich", fetch, finished=lambda cp: int(cp.get("offset", 0)) >= n
    )


def _file_identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def snapshot_plan(path: Path, progress: Callable[[int], None] | None = None) -> HarvestPlan:
    """Resumes a run of the same file; a different file under the same name (next week's
    snapshot download) starts from its first line instead of being skipped as "done"."""

    def batches(cp: Checkpoint) -> Iterator[Batch]:
        try:
            ident = _file_identity(path)
        except OSError as exc:
            raise SourceError(
                f"cannot read the file: {exc.strerror or exc}",
                source="arxiv_snapshot",
                location=str(path),
            ) from exc
        if cp and cp.get("file") != ident:
            cp = None
        for b in snapshot_batches(path, checkpoint=cp, progress=progress, location=str(path)):
            if b.checkpoint is not None:
                b.checkpoint = {**b.checkpoint, "file": ident}
            yield b

    return HarvestPlan(f"arxiv_snapshot:{path.name}", batches)

"""Citation counts from Semantic Scholar (Graph API v1) and OpenAlex (works).

Parsers yield papers carrying the ids (arXiv and/or DOI), title, ``citations`` and, in ``extra``,
``reference_count`` (+ ``influential_citations``, ``s2_paper_id`` / ``openalex_id``,
``referenced_works`` for OpenAlex). Authors are left out on purpose: both services mangle names
(``Jakub L'ala``) and arXiv's are better; ingest keeps the maximum of counts.

Not found is a :class:`ParseProblem` whose message starts with :data:`NOT_FOUND` and whose
``location`` is the id asked for (S2 batch ``null`` s, S2 404, OpenAlex 404 with its HTML body);
:func:`not_found_id` recognises it.

Fetchers take the ids to enrich (arXiv ids or DOIs, any form :func:`parse_paper_id` accepts) and
yield one batch per request with checkpoint ``{"offset": n}`` = ids done.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from paperradar.config import Settings
from paperradar.errors import InvalidId, SourceError
from paperradar.model import Paper, PaperId, ParseProblem, normalize_text, parse_paper_id
from paperradar.sources import Batch, Record
from paperradar.sources.http import PoliteClient

__all__ = [
    "NOT_FOUND",
    "OPENALEX",
    "SEMANTIC_SCHOLAR",
    "fetch_openalex",
    "fetch_semantic_scholar",
    "not_found_id",
    "parse_openalex",
    "parse_semantic_scholar",
]

SEMANTIC_SCHOLAR = "semantic_scholar"
OPENALEX = "openalex"
NOT_FOUND = "not found"
S2_FIELDS = "externalIds,title,abstract,citationCount,referenceCount,influentialCitationCount"
S2_BATCH_MAX = 500


def not_found_id(problem: ParseProblem) -> str | None:
    """The id a not-found marker was asked for, else None."""
    if problem.source in (SEMANTIC_SCHOLAR, OPENALEX) and problem.message.startswith(NOT_FOUND):
        return problem.location
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _load(data: bytes, source: str, location: str) -> Any:
    try:
        return orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise SourceError(f"not valid JSON: {exc}", source=source, location=location) from exc


# -- Semantic Scholar -------------------------------------------------------------------------
def _s2_paper(obj: dict[str, Any], where: str) -> Record:
    ext = obj.get("externalIds") if isinstance(obj.get("externalIds"), dict) else {}
    assert isinstance(ext, dict)
    ids = [f"arXiv:{_str(ext.get('ArXiv'))}" if ext.get("ArXiv") else "", _str(ext.get("DOI"))]
    ids = [i for i in ids if i]
    title = normalize_text(_str(obj.get("title")))
    if not ids:
        return ParseProblem(SEMANTIC_SCHOLAR, where, f"no arXiv id or DOI for {title[:60]!r}")
    extra: dict[str, Any] = {}
    if pid := _str(obj.get("paperId")):
        extra["s2_paper_id"] = pid
    if (refs := _int(obj.get("referenceCount"))) is not None:
        extra["reference_count"] = refs
    if (infl := _int(obj.get("influentialCitationCount"))) is not None:
        extra["influential_citations"] = infl
    try:
        return Paper.from_ids(
            ids=ids,
            title=title,
            source=SEMANTIC_SCHOLAR,
            abstract=normalize_text(_str(obj.get("abstract"))),
            citations=_int(obj.get("citationCount")),
            extra=extra,
        )
    except InvalidId as exc:
        return ParseProblem(SEMANTIC_SCHOLAR, where, f"unusable ids {ids}: {exc}")


def parse_semantic_scholar(
    data: bytes, location: str = "", *, requested: Sequence[str] = ()
) -> Iterator[Record]:
    """A paper object, a batch list (``null`` = not found; ``requested`` names them) or a search
    page ``{"data": [...]}`` (an empty search may have no ``data`` key)."""
    doc = _load(data, SEMANTIC_SCHOLAR, location)
    if isinstance(doc, dict) and "paperId" not in doc and "externalIds" not in doc:
        if "error" in doc:
            raise SourceError(
                f"API error: {doc['error']}", source=SEMANTIC_SCHOLAR, location=location
            )
        items = doc.get("data", [])
    else:
        items = doc if isinstance(doc, list) else [doc]
    if not isinstance(items, list):
        raise SourceError("'data' is not a list", source=SEMANTIC_SCHOLAR, location=location)
    for i, item in enumerate(items):
        where = f"{location} item {i}".strip()
        if item is None:
            asked = requested[i] if i < len(requested) else where
            yield ParseProblem(SEMANTIC_SCHOLAR, asked, f"{NOT_FOUND}: {asked}")
        elif isinstance(item, dict):
            yield _s2_paper(item, where)
        else:
            yield ParseProblem(SEMANTIC_SCHOLAR, where, f"item is {type(item).__name__}")


def _s2_key(pid: PaperId) -> str:
    return f"ARXIV:{pid.key}" if pid.kind == "arxiv" else f"DOI:{pid.doi}"


def fetch_semantic_scholar(
    client: PoliteClient,
    settings: Settings,
    ids: Sequence[str],
    *,
    batch_size: int = S2_BATCH_MAX,
    api_key: str | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """``POST /paper/batch`` in chunks of ≤ 500 ids."""
    start = int((checkpoint or {}).get("offset", 0))
    size = max(1, min(batch_size, S2_BATCH_MAX))
    url = f"{settings.semantic_scholar_url.rstrip('/')}/paper/batch"
    headers = {"x-api-key": api_key} if api_key else None
    for lo in range(start, len(ids), size):
        chunk = list(ids[lo : lo + size])
        records: list[Record] = []
        keys: list[str] = []
        asked: list[str] = []
        for raw in chunk:
            try:
                keys.append(_s2_key(parse_paper_id(raw)))
                asked.append(raw)
            except InvalidId:
                records.append(
                    ParseProblem(SEMANTIC_SCHOLAR, raw, f"{NOT_FOUND}: not an id {raw!r}")
                )
        if keys:
            resp = client.post_json(
                url, {"ids": keys}, params={"fields": S2_FIELDS}, headers=headers,
                source=SEMANTIC_SCHOLAR,
            )  # fmt: skip
            records.extend(parse_semantic_scholar(resp.content, resp.url, requested=asked))
        yield Batch(SEMANTIC_SCHOLAR, records, {"offset": lo + len(chunk)}, url)


# -- OpenAlex ---------------------------------------------------------------------------------
def _openalex_abstract(index: Any) -> str:
    if not isinstance(index, dict):
        return ""
    slots: dict[int, str] = {}
    for word, positions in index.items():
        if isinstance(positions, list):
            for p in positions:
                if isinstance(p, int) and 0 <= p < 100_000:
                    slots[p] = str(word)
    return normalize_text(" ".join(slots[k] for k in sorted(slots)))


def _openalex_work(obj: dict[str, Any], where: str) -> Record:
    ids: list[str] = []
    locations = obj.get("locations")
    for loc in locations if isinstance(locations, list) else []:
        if isinstance(loc, dict) and "arxiv.org/abs/" in _str(loc.get("landing_page_url")):
            ids.append(_str(loc.get("landing_page_url")))
    if doi := _str(obj.get("doi")):
        ids.append(doi)
    title = normalize_text(_str(obj.get("title")) or _str(obj.get("display_name")))
    if not ids:
        return ParseProblem(OPENALEX, where, f"no arXiv id or DOI for {title[:60]!r}")
    refs = obj.get("referenced_works")
    extra: dict[str, Any] = {}
    if oid := _str(obj.get("id")):
        extra["openalex_id"] = oid.rsplit("/", 1)[-1]
    if isinstance(refs, list):
        extra["reference_count"] = len(refs)
        extra["referenced_works"] = [r.rsplit("/", 1)[-1] for r in refs if isinstance(r, str)]
    try:
        return Paper.from_ids(
            ids=ids,
            title=title,
            source=OPENALEX,
            abstract=_openalex_abstract(obj.get("abstract_inverted_index")),
            citations=_int(obj.get("cited_by_count")),
            extra=extra,
        )
    except InvalidId as exc:
        return ParseProblem(OPENALEX, where, f"unusable ids {ids}: {exc}")


def parse_openalex(data: bytes, location: str = "") -> Iterator[Record]:
    """A single work or a list response ``{"meta": …, "results": [...]}``."""
    doc = _load(data, OPENALEX, location)
    if not isinstance(doc, dict):
        raise SourceError(
            f"expected a JSON object, got {type(doc).__name__}", source=OPENALEX, location=location
        )
    items = doc.get("results") if "results" in doc else [doc]
    if not isinstance(items, list):
        raise SourceError("'results' is not a list", source=OPENALEX, location=location)
    for i, item in enumerate(items):
        where = f"{location} item {i}".strip()
        if isinstance(item, dict):
            yield _openalex_work(item, where)
        else:
            yield ParseProblem(OPENALEX, where, f"item is {type(item).__name__}")


def fetch_openalex(
    client: PoliteClient,
    settings: Settings,
    ids: Sequence[str],
    *,
    api_key: str | None = None,
    per_batch: int = 25,
    checkpoint: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """Singleton ``GET /works/https://doi.org/<doi>`` lookups (free of list/search credits);
    arXiv ids are looked up by their DataCite DOI ``10.48550/arxiv.<id>``."""
    start = int((checkpoint or {}).get("offset", 0))
    base = settings.openalex_url.rstrip("/")
    params: dict[str, str | int] = {"mailto": settings.contact_email}
    if api_key:
        params["api_key"] = api_key
    records: list[Record] = []
    for n in range(start, len(ids)):
        raw = ids[n]
        try:
            pid = parse_paper_id(raw)
        except InvalidId:
            records.append(ParseProblem(OPENALEX, raw, f"{NOT_FOUND}: not an id {raw!r}"))
            pid = None
        if pid is not None:
            doi = f"10.48550/arxiv.{pid.key}" if pid.kind == "arxiv" else pid.doi
            url = f"{base}/works/https://doi.org/{doi}"
            resp = client.get(url, params=params, accept_statuses={404}, source=OPENALEX)
            if resp.status == 404:
                records.append(ParseProblem(OPENALEX, raw, f"{NOT_FOUND}: {raw}"))
            else:
                records.extend(parse_openalex(resp.content, resp.url))
        if (n + 1 - start) % per_batch == 0 or n == len(ids) - 1:
            yield Batch(OPENALEX, records, {"offset": n + 1}, base)
            records = []

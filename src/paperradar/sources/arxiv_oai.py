"""arXiv OAI-PMH (``ListRecords`` with metadataPrefix ``arXiv``, ``arXivRaw`` or ``oai_dc``).

* :func:`parse_oai_page` is pure: one response → :class:`OaiPage` (records, resumption token,
  response date). ``noRecordsMatch`` is an empty page; any other OAI error raises
  :class:`OaiError` (a :class:`SourceError` with ``.code``).
* A deleted record (``<header status="deleted">``) comes out as a :class:`ParseProblem` whose
  message starts with :data:`DELETED` and whose ``location`` ends with the arXiv id; use
  :func:`deleted_id` to recognise it.
* :func:`fetch_oai` follows resumption tokens, one batch per page. Checkpoint::

      {"metadata_prefix": "arXiv", "set": "cs", "from": "2024-01-01", "until": null,
       "resumption_token": "6967186|2001" | null, "watermark": "2024-01-31"}

  While ``resumption_token`` is set, a re-run continues the harvest. Once it is null the harvest
  is complete and ``watermark`` (``until``, else the first response's date) is the ``from`` of
  the next incremental run. ``badResumptionToken`` (expired token) restarts the window from its
  ``from`` date, once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from paperradar.config import Settings
from paperradar.errors import InvalidId, SourceError
from paperradar.model import Author, Paper, ParseProblem, Version, normalize_text, parse_paper_id
from paperradar.sources import Batch, Record
from paperradar.sources.arxiv_authors import split_arxiv_authors
from paperradar.sources.http import PoliteClient
from paperradar.sources.latex import latex_to_unicode
from paperradar.sources.timestamps import parse_iso_utc, parse_rfc2822_utc
from paperradar.sources.xml_safe import parse_xml, text_of

__all__ = ["DELETED", "SOURCE", "OaiError", "OaiPage", "deleted_id", "fetch_oai", "parse_oai_page"]

SOURCE = "arxiv_oai"
DELETED = "deleted upstream"

log = logging.getLogger(__name__)

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_OAI_DC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"


class OaiError(SourceError):
    """An OAI-PMH ``<error code=…>`` response other than ``noRecordsMatch``."""

    def __init__(self, code: str, message: str, *, location: str = "") -> None:
        self.code = code
        super().__init__(f"OAI error {code}: {message}", source=SOURCE, location=location)


@dataclass(slots=True)
class OaiPage:
    records: list[Record] = field(default_factory=list)
    resumption_token: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None
    response_date: datetime | None = None


def deleted_id(problem: ParseProblem) -> str | None:
    """The arXiv id of a deleted-record marker, else None."""
    if problem.source == SOURCE and problem.message.startswith(DELETED):
        return problem.message.removeprefix(DELETED).strip(": ")
    return None


def _t(parent: Element, tag: str) -> str:
    return normalize_text(text_of(parent.find(tag)))


def _date(text: str) -> datetime | None:
    return parse_iso_utc(text) if text else None


def _common_extra(meta: Element, ns: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for tag, key in (
        ("comments", "comment"),
        ("journal-ref", "journal_ref"),
        ("report-no", "report_no"),
        ("msc-class", "msc_class"),
        ("acm-class", "acm_class"),
        ("proxy", "proxy"),
        ("license", "license"),
        ("submitter", "submitter"),
    ):
        if value := _t(meta, f"{ns}{tag}"):
            extra[key] = normalize_text(latex_to_unicode(value)) if key == "submitter" else value
    return extra


def _paper_from_arxiv(meta: Element, ns: str, header_id: str, raw_format: bool) -> Paper:
    raw_id = _t(meta, f"{ns}id") or header_id
    title = _t(meta, f"{ns}title")
    categories = _t(meta, f"{ns}categories").split()
    dois = _t(meta, f"{ns}doi").lower().split()
    extra = _common_extra(meta, ns)
    if len(dois) > 1:
        extra["dois"] = dois
    versions: list[Version] = []
    if raw_format:
        for v in meta.findall(f"{ns}version"):
            label = v.get("version") or ""
            if label[:1] == "v" and label[1:].isdigit():
                versions.append(
                    Version(
                        int(label[1:]),
                        parse_rfc2822_utc(_t(v, f"{ns}date")),
                        _t(v, f"{ns}size") or None,
                    )
                )
        authors = split_arxiv_authors(text_of(meta.find(f"{ns}authors")))
        published = versions[0].date if versions else None
        updated = versions[-1].date if versions else None
    else:
        authors = []
        for a in meta.iter(f"{ns}author"):
            parts = [_t(a, f"{ns}forenames"), _t(a, f"{ns}keyname"), _t(a, f"{ns}suffix")]
            name = normalize_text(latex_to_unicode(" ".join(p for p in parts if p)))
            if any(ch.isalnum() for ch in name):  # collaboration splits leave ":" authors
                affs = [normalize_text(text_of(x)) for x in a.findall(f"{ns}affiliation")]
                authors.append(Author(name, [x for x in affs if x]))
        published = _date(_t(meta, f"{ns}created"))
        updated = _date(_t(meta, f"{ns}updated")) or published
        if published:
            versions.append(Version(1, published))
    return Paper.from_ids(
        ids=[raw_id],
        title=title,
        source=SOURCE,
        abstract=_t(meta, f"{ns}abstract"),
        authors=authors,
        version=max((v.version for v in versions), default=None) if raw_format else None,
        doi=dois[0] if dois else None,
        categories=categories,
        primary_category=categories[0] if categories else None,
        published=published,
        updated=updated,
        versions=versions,
        extra=extra,
    )


def _paper_from_dc(meta: Element, header_id: str) -> Paper:
    authors = []
    for c in meta.findall(f"{_DC}creator"):
        name = normalize_text(text_of(c))
        if "," in name:
            last, _, first = name.partition(",")
            name = normalize_text(f"{first} {last}")
        if name:
            authors.append(Author(name))
    ids = [header_id] + [normalize_text(text_of(x)) for x in meta.findall(f"{_DC}identifier")]
    dates = [parse_iso_utc(normalize_text(text_of(d))) for d in meta.findall(f"{_DC}date")]
    dates_known = [d for d in dates if d is not None]
    return Paper.from_ids(
        ids=ids,
        title=_t(meta, f"{_DC}title"),
        source=SOURCE,
        abstract=_t(meta, f"{_DC}description"),
        authors=authors,
        published=min(dates_known) if dates_known else None,
        updated=max(dates_known) if dates_known else None,
        extra={"subjects": [normalize_text(text_of(s)) for s in meta.findall(f"{_DC}subject")]},
    )


def _record(rec: Element, where: str) -> Record:
    header = rec.find(f"{_OAI}header")
    if header is None:
        return ParseProblem(SOURCE, where, "record without <header>")
    identifier = _t(header, f"{_OAI}identifier")
    arxiv = identifier.removeprefix("oai:arXiv.org:")
    if header.get("status") == "deleted":
        return ParseProblem(SOURCE, f"{where} ({identifier})", f"{DELETED}: {arxiv}")
    try:
        pid = parse_paper_id(arxiv)
    except InvalidId:
        return ParseProblem(SOURCE, where, f"identifier is not an arXiv id: {identifier!r}")
    md = rec.find(f"{_OAI}metadata")
    body = md[0] if md is not None and len(md) else None
    if body is None:
        return ParseProblem(SOURCE, where, f"{pid.key}: record without metadata")
    ns, _, local = body.tag.rpartition("}")
    ns = f"{ns}}}" if ns else ""
    if local in ("arXiv", "arXivRaw"):  # some harvesters drop the arXiv namespace: match by name
        if not _t(body, f"{ns}title"):
            return ParseProblem(SOURCE, where, f"{pid.key}: no title")
        paper = _paper_from_arxiv(body, ns, pid.key, raw_format=local == "arXivRaw")
    elif body.tag == f"{_OAI_DC}dc":
        if not _t(body, f"{_DC}title"):
            return ParseProblem(SOURCE, where, f"{pid.key}: no title")
        paper = _paper_from_dc(body, pid.key)
    else:
        return ParseProblem(SOURCE, where, f"{pid.key}: unknown metadata format <{body.tag}>")
    if paper.id != pid.key:
        return ParseProblem(SOURCE, where, f"metadata id {paper.id} differs from header {pid.key}")
    paper.extra["oai_datestamp"] = _t(header, f"{_OAI}datestamp")
    paper.extra["oai_sets"] = [normalize_text(text_of(s)) for s in header.findall(f"{_OAI}setSpec")]
    return paper


def parse_oai_page(data: bytes, location: str = "") -> OaiPage:
    """One OAI-PMH response (ListRecords or GetRecord)."""
    root = parse_xml(data, source=SOURCE, location=location)
    if root.tag != f"{_OAI}OAI-PMH":
        raise SourceError(f"expected <OAI-PMH>, got <{root.tag}>", source=SOURCE, location=location)
    page = OaiPage(response_date=_date(_t(root, f"{_OAI}responseDate")))
    err = root.find(f"{_OAI}error")
    if err is not None:
        code = err.get("code") or "unknown"
        if code == "noRecordsMatch":
            return page
        raise OaiError(code, normalize_text(text_of(err)), location=location)
    container = root.find(f"{_OAI}ListRecords")
    if container is None:
        container = root.find(f"{_OAI}GetRecord")
    if container is None:
        raise SourceError(
            "no ListRecords, GetRecord or error element", source=SOURCE, location=location
        )
    for i, rec in enumerate(container.findall(f"{_OAI}record")):
        page.records.append(_record(rec, f"{location} record {i}".strip()))
    token = container.find(f"{_OAI}resumptionToken")
    if token is not None:
        page.resumption_token = (token.text or "").strip() or None
        size, cursor = token.get("completeListSize", ""), token.get("cursor", "")
        page.complete_list_size = int(size) if size.isdigit() else None
        page.cursor = int(cursor) if cursor.isdigit() else None
    return page


def fetch_oai(
    client: PoliteClient,
    settings: Settings,
    *,
    metadata_prefix: str = "arXiv",
    set_spec: str | None = None,
    from_date: str | None = None,
    until: str | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """Harvest ``ListRecords``; see the module docstring for the checkpoint."""
    cp = dict(checkpoint or {})
    token: str | None = cp.get("resumption_token")
    if token:
        metadata_prefix = cp.get("metadata_prefix", metadata_prefix)
        set_spec = cp.get("set", set_spec)
        from_date = cp.get("from", from_date)
        until = cp.get("until", until)
    elif from_date is None and cp.get("watermark"):
        from_date = str(cp["watermark"])
    watermark: str | None = cp.get("watermark") if token else None
    restarted = False
    while True:
        if token:
            params: dict[str, str | int] = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
            if set_spec:
                params["set"] = set_spec
            if from_date:
                params["from"] = from_date
            if until:
                params["until"] = until
        resp = client.get(settings.oai_url, params=params, source=SOURCE)
        try:
            page = parse_oai_page(resp.content, resp.url)
        except OaiError as exc:
            if exc.code == "badResumptionToken" and token and not restarted:
                log.warning("resumption token expired; restarting the harvest from %s", from_date)
                token, restarted = None, True
                continue
            raise
        if watermark is None:
            stamp = page.response_date.date().isoformat() if page.response_date else None
            watermark = until or stamp
        token = page.resumption_token
        yield Batch(
            SOURCE,
            page.records,
            {
                "metadata_prefix": metadata_prefix,
                "set": set_spec,
                "from": from_date,
                "until": until,
                "resumption_token": token,
                "watermark": watermark,
            },
            resp.url,
        )
        if not token:
            return

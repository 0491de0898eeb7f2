"""Papers out: JSON lines (our import format), CSV, BibTeX, RIS and CSL-JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Literal

from paperradar.model import Paper, paper_to_dict

__all__ = ["FORMATS", "ExportFormat", "bibtex_entry", "csl_json", "export_papers", "ris_entry"]

ExportFormat = Literal["jsonl", "csv", "bibtex", "ris", "csl-json"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "bibtex", "ris", "csl-json")
CSV_FIELDS = [
    "id",
    "arxiv_id",
    "doi",
    "title",
    "authors",
    "abstract",
    "categories",
    "published",
    "upvotes",
    "stars",
    "citations",
    "url",
]
_BIB_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}"}


def _bib_escape(text: str) -> str:
    return "".join(_BIB_SPECIAL.get(ch, ch) for ch in text)


def bibtex_key(p: Paper) -> str:
    last = re.sub(r"\W", "", p.authors[0].name.split()[-1]) if p.authors else "anon"
    year = str(p.published.year) if p.published else ""
    word = next((w for w in re.findall(r"[A-Za-z]{4,}", p.title)), "paper")
    return f"{last}{year}{word}".lower() or "paper"


def bibtex_entry(p: Paper) -> str:
    fields: list[tuple[str, str]] = [
        ("title", "{" + _bib_escape(p.title) + "}"),
        ("author", " and ".join(_bib_escape(a.name) for a in p.authors)),
    ]
    if p.published:
        fields.append(("year", str(p.published.year)))
    if p.arxiv_id:
        fields += [("eprint", p.arxiv_id), ("archivePrefix", "arXiv")]
        if p.primary_category:
            fields.append(("primaryClass", p.primary_category))
    if p.doi:
        fields.append(("doi", p.doi))
    if p.abs_url:
        fields.append(("url", p.abs_url))
    if p.abstract:
        fields.append(("abstract", _bib_escape(p.abstract)))
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
    return f"@article{{{bibtex_key(p)},\n{body}\n}}\n"


def ris_entry(p: Paper) -> str:
    lines = ["TY  - JOUR" if p.doi and not p.arxiv_id else "TY  - PREP", f"TI  - {p.title}"]
    lines += [f"AU  - {a.name}" for a in p.authors]
    if p.published:
        lines.append(f"PY  - {p.published.year}")
    if p.abstract:
        lines.append(f"AB  - {p.abstract}")
    if p.doi:
        lines.append(f"DO  - {p.doi}")
    if p.abs_url:
        lines.append(f"UR  - {p.abs_url}")
    lines.append("ER  - ")
    return "\n".join(lines) + "\n"


def csl_json(p: Paper) -> dict[str, object]:
    item: dict[str, object] = {
        "id": p.id,
        "type": "article",
        "title": p.title,
        "author": [
            {"family": a.name.rsplit(" ", 1)[-1], "given": a.name.rsplit(" ", 1)[0]}
            if " " in a.name
            else {"literal": a.name}
            for a in p.authors
        ],
    }
    if p.abstract:
        item["abstract"] = p.abstract
    if p.published:
        item["issued"] = {"date-parts": [[p.published.year, p.published.month, p.published.day]]}
    if p.doi:
        item["DOI"] = p.doi
    if p.abs_url:
        item["URL"] = p.abs_url
    if p.arxiv_id:
        item["number"] = f"arXiv:{p.arxiv_id}"
    return item


def export_papers(papers: Iterable[Paper], fmt: ExportFormat) -> Iterator[str]:
    """The export as chunks of text, streamed paper by paper."""
    if fmt == "jsonl":
        for p in papers:
            yield json.dumps(paper_to_dict(p), ensure_ascii=False) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, CSV_FIELDS)
        writer.writeheader()
        for p in papers:
            writer.writerow(
                {
                    "id": p.id,
                    "arxiv_id": p.arxiv_id or "",
                    "doi": p.doi or "",
                    "title": p.title,
                    "authors": "; ".join(p.author_names),
                    "abstract": p.abstract,
                    "categories": " ".join(p.categories),
                    "published": p.published.date().isoformat() if p.published else "",
                    "upvotes": p.upvotes if p.upvotes is not None else "",
                    "stars": p.stars if p.stars is not None else "",
                    "citations": p.citations if p.citations is not None else "",
                    "url": p.abs_url or "",
                }
            )
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()
    elif fmt == "bibtex":
        for p in papers:
            yield bibtex_entry(p) + "\n"
    elif fmt == "ris":
        for p in papers:
            yield ris_entry(p) + "\n"
    else:
        yield "["
        for i, p in enumerate(papers):
            yield ("," if i else "") + "\n" + json.dumps(csl_json(p), ensure_ascii=False)
        yield "\n]\n"

"""Papers out: JSON lines (our import format), CSV, BibTeX, RIS and CSL-JSON."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
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
_BIB_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}
_BIB_TABLE = str.maketrans(_BIB_SPECIAL)
_MATH = re.compile(r"\$[^$\n]+\$")


def _balanced(tex: str) -> bool:
    depth = 0
    for ch in tex.replace("\\{", "").replace("\\}", ""):
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def _bib_escape(text: str) -> str:
    """Text for a BibTeX field: LaTeX specials escaped so they print as written, except inline
    math from arXiv titles and abstracts (``$\\mathcal{O}(n^2)$``), kept as LaTeX when its braces
    balance, so it typesets as math instead of as its source."""
    out: list[str] = []
    pos = 0
    for m in _MATH.finditer(text):
        if not _balanced(m.group(0)):
            continue
        out.append(text[pos : m.start()].translate(_BIB_TABLE))
        out.append(m.group(0))
        pos = m.end()
    out.append(text[pos:].translate(_BIB_TABLE))
    return "".join(out)


def _ascii_word(text: str) -> str:
    """Letters and digits of ``text`` folded to ASCII (Ñúñez -> Nunez): BibTeX keys must be ASCII."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]", "", folded)


def _family_name(name: str) -> str:
    if "," in name:  # "Last, First"
        return name.split(",", 1)[0]
    return name.split()[-1] if name.split() else name


def bibtex_key(p: Paper, taken: set[str] | None = None) -> str:
    """``lastnameYEARword``, ASCII only; unique among ``taken`` (which it extends) by a, b, c…"""
    last = _ascii_word(_family_name(p.authors[0].name)) if p.authors else ""
    year = str(p.published.year) if p.published else ""
    word = next((w for w in re.findall(r"[A-Za-z]{4,}", _ascii_text(p.title))), "paper")
    key = f"{last or 'anon'}{year}{word}".lower()
    if taken is None:
        return key
    unique, n = key, 0
    while unique in taken:
        n += 1
        unique = key + _suffix(n)
    taken.add(unique)
    return unique


def _ascii_text(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _suffix(n: int) -> str:
    """1 -> a, 26 -> z, 27 -> aa …"""
    out = ""
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(97 + r) + out
    return out


def _bib_name(name: str) -> str:
    """One author for an ``and``-separated list: a name containing " and " is kept whole."""
    escaped = _bib_escape(name)
    return "{" + escaped + "}" if re.search(r"\sand\s", name, re.I) else escaped


def bibtex_entry(p: Paper, taken: set[str] | None = None) -> str:
    fields: list[tuple[str, str]] = [
        ("title", "{" + _bib_escape(p.title) + "}"),
        ("author", " and ".join(_bib_name(a.name) for a in p.authors)),
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
    return f"@article{{{bibtex_key(p, taken)},\n{body}\n}}\n"


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


def _csl_name(name: str) -> dict[str, str]:
    if "," in name:  # "Last, First"
        family, given = (part.strip() for part in name.split(",", 1))
        return {"family": family, "given": given} if family and given else {"literal": name}
    if " " in name.strip():
        given, family = name.strip().rsplit(" ", 1)
        return {"family": family, "given": given}
    return {"literal": name}


def csl_json(p: Paper) -> dict[str, object]:
    item: dict[str, object] = {
        "id": p.id,
        "type": "article",
        "title": p.title,
        "author": [_csl_name(a.name) for a in p.authors],
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


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (CSV injection, OWASP): such text cells get a leading apostrophe, which spreadsheets hide.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


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
                    "title": _csv_text(p.title),
                    "authors": _csv_text("; ".join(p.author_names)),
                    "abstract": _csv_text(p.abstract),
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
        taken: set[str] = set()  # citation keys are unique within one file
        for p in papers:
            yield bibtex_entry(p, taken) + "\n"
    elif fmt == "ris":
        for p in papers:
            yield ris_entry(p) + "\n"
    else:
        yield "["
        for i, p in enumerate(papers):
            yield ("," if i else "") + "\n" + json.dumps(csl_json(p), ensure_ascii=False)
        yield "\n]\n"

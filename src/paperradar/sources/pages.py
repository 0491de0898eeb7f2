"""Page dumps: the text of a paper-listing page (title line, abstract line, repeated).

Handles the compact and the blank-line variants, page chrome ("Subscribe", "Get trending papers
…", "byAK and the research community", date headers, upvote counts) and a title glued to
"Subscribe". Papers carry no id, so their key is the title hash; ingest later merges them with
the same paper from arXiv by title.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

from paperradar.errors import InvalidId, SourceError
from paperradar.model import Paper, ParseProblem, normalize_text

__all__ = ["SOURCE", "demo_pages", "parse_page_dump"]

SOURCE = "page_dump"

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_CHROME = re.compile(
    r"^(?:"
    r"get trending papers in your email inbox.*"
    r"|subscribe"
    r"|by\s?ak and the research community"
    r"|new|trending|daily papers|papers|search|submit|upvote|upvoted|view all"
    r"|(?:" + _MONTHS + r")[a-z]*\.? \d{1,2}(?:,? \d{4})?"  # "Mar 18", "March 18, 2025"
    r"|\d{4}-\d{2}-\d{2}"
    r"|[\d,.]+k?"  # bare counts
    r"|[·•|\-–—]+"
    r")$",
    re.IGNORECASE,
)
_GLUED = re.compile(r"^Subscribe(?=\S)")
MAX_TITLE = 400
MIN_ABSTRACT = 40


def _is_title(line: str) -> bool:
    return len(line) <= MAX_TITLE


def _is_abstract(line: str, title: str) -> bool:
    return len(line) >= MIN_ABSTRACT and len(line) > len(title) * 0.6


_SENTENCE_END = (".", "!", "?", ")", "]", '"', "'", "\u201d", "\u2019", "*")


def _truncated_last_line(text: str, cut_mid_character: bool) -> int | None:
    """The number of the last line when the file looks cut off inside it, else None.

    Saved pages often lack a final newline, so that alone proves nothing; a last line that also
    stops mid-sentence (no closing punctuation, not a URL) or inside a character was cut off."""
    if text.endswith(("\n", "\r")) and not cut_mid_character:
        return None
    raw_lines = text.splitlines()
    if not raw_lines:
        return None
    last = raw_lines[-1].rstrip()
    if not last:
        return None
    if not cut_mid_character:
        if last.endswith(_SENTENCE_END):
            return None
        final_word = last.rsplit(None, 1)[-1]
        if "://" in final_word or final_word.startswith("www."):
            return None
    return len(raw_lines)


def parse_page_dump(data: bytes, *, location: str = "page dump") -> Iterator[Paper | ParseProblem]:
    """Papers of a page dump. Raises SourceError when the bytes are not a text page dump at all."""
    if not data.strip():
        raise SourceError("the file is empty", source=SOURCE, location=location)
    if b"\x00" in data[:4096]:
        raise SourceError("binary data, not a text page dump", source=SOURCE, location=location)
    cut_mid_character = False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":
            raise SourceError(
                f"not UTF-8 text (byte {exc.start}): save the page as UTF-8",
                source=SOURCE,
                location=location,
            ) from exc
        # the file was cut inside a multi-byte character: it is truncated, not mis-encoded
        text = data[: exc.start].decode("utf-8")
        cut_mid_character = True
    cut_line = _truncated_last_line(text, cut_mid_character)
    lines: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = normalize_text(_GLUED.sub("", raw.strip()))
        if line and not _CHROME.match(line):
            lines.append((n, line))
    found = 0
    problems: list[ParseProblem] = []
    i = 0
    while i < len(lines):
        n, title = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if _is_title(title) and nxt is not None and _is_abstract(nxt[1], title):
            found += 1
            if nxt[0] == cut_line:
                problems.append(
                    ParseProblem(
                        SOURCE,
                        f"{location}:{nxt[0]}",
                        "the file ends in the middle of this abstract (truncated?): "
                        f"not imported, save the whole page again: {title[:60]!r}",
                    )
                )
                i += 2
                continue
            try:
                paper = Paper.from_ids(title=title, source=SOURCE, abstract=nxt[1])
            except InvalidId as exc:  # e.g. a "title" of punctuation only: nothing to key on
                problems.append(ParseProblem(SOURCE, f"{location}:{n}", str(exc)))
            else:
                yield paper
            i += 2
            continue
        why = (
            "line too long for a title and no title before it"
            if not _is_title(title)
            else "title without an abstract after it"
        )
        problems.append(ParseProblem(SOURCE, f"{location}:{n}", f"{why}: {title[:60]!r}"))
        i += 1
    if found == 0:
        raise SourceError(
            "no title/abstract pairs found: this does not look like a page dump "
            "(expected a title line followed by an abstract line)",
            source=SOURCE,
            location=location,
        )
    yield from problems


def demo_pages() -> Iterator[tuple[str, bytes]]:
    """The demo corpus shipped in the package: (location, content) of each captured listing
    page, in name order, for :func:`parse_page_dump`."""
    folder = resources.files("paperradar") / "data" / "demo"
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.name.endswith(".txt"):
            yield f"demo/{item.name}", item.read_bytes()

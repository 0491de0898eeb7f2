"""Our own export format: one JSON object per line (see ``model.paper_to_dict``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import orjson

from paperradar.errors import InvalidId
from paperradar.model import Paper, ParseProblem, paper_from_dict

__all__ = ["SOURCE", "parse_jsonl"]

SOURCE = "jsonl"
_NOT_ORJSON = object()


def parse_jsonl(
    lines: Iterable[bytes], *, location: str = "jsonl"
) -> Iterator[Paper | ParseProblem]:
    """Papers from JSON lines; a bad line is a problem naming its line number, the rest is kept.

    An empty file and a binary file are one problem each (not a silent success, not one problem
    per line of noise)."""
    any_line = False
    n = 0
    it = iter(lines)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            break
        except (OSError, EOFError) as exc:
            # a truncated or corrupt .gz: keep every whole line before it, say where it stopped
            yield ParseProblem(
                SOURCE, f"{location}:{n + 1}", f"cannot read the file on from here: {exc}"
            )
            return
        n += 1
        if not raw.strip():
            continue
        where = f"{location}:{n}"
        if b"\x00" in raw:
            yield ParseProblem(
                SOURCE, where, "binary data, not JSON lines: nothing from here on was read"
            )
            return
        any_line = True
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = _NOT_ORJSON
        try:
            # what orjson refuses (NaN, a BOM, UTF-16, bad UTF-8 …) json decides, as before
            if obj is _NOT_ORJSON:
                obj = json.loads(raw)
        except UnicodeDecodeError:
            yield ParseProblem(SOURCE, where, "not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            yield ParseProblem(SOURCE, where, f"not JSON: {exc.msg} (column {exc.colno})")
            continue
        try:
            yield paper_from_dict(obj, source=SOURCE)
        except (ValueError, TypeError, KeyError, InvalidId) as exc:
            yield ParseProblem(SOURCE, where, f"not a paper: {exc}")
    if not any_line:
        yield ParseProblem(SOURCE, location, "the file is empty: no JSON lines in it")

"""Our own export format: one JSON object per line (see ``model.paper_to_dict``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from paperradar.errors import InvalidId
from paperradar.model import Paper, ParseProblem, paper_from_dict

__all__ = ["SOURCE", "parse_jsonl"]

SOURCE = "jsonl"


def parse_jsonl(
    lines: Iterable[bytes], *, location: str = "jsonl"
) -> Iterator[Paper | ParseProblem]:
    """Papers from JSON lines; a bad line is a problem naming its line number, the rest is kept."""
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{location}:{n}"
        try:
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

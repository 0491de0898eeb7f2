"""Sources: one module per source. Each has a pure ``parse_*(data: bytes)`` yielding papers and
problems, and a ``fetch_*`` that does the HTTP and yields :class:`Batch` es.

A batch is the unit of durability: ingest stores its papers *and* its checkpoint in one
transaction, so a run killed at any point resumes from the last stored checkpoint and ends with
exactly the database an uninterrupted run gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from paperradar.model import Paper, ParseProblem

__all__ = ["Batch", "Record"]

Record = Paper | ParseProblem


@dataclass(slots=True)
class Batch:
    """Papers and problems from one request or file chunk, plus where to resume after it.

    ``checkpoint`` is a JSON-able dict stored per source (e.g. ``{"resumption_token": …}`` or
    ``{"start": 200}``); ``None`` means "no change". ``location`` names the URL/file and position
    for messages.
    """

    source: str
    records: list[Record] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    location: str = ""


def records_to_batches(
    source: str, records: Iterator[Record], *, size: int = 5000, location: str = ""
) -> Iterator[Batch]:
    """Group a record stream (e.g. a file parse) into batches of ``size``."""
    chunk: list[Record] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield Batch(source, chunk, None, location)
            chunk = []
    if chunk:
        yield Batch(source, chunk, None, location)

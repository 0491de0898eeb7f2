"""Building real engines on temporary SQLite files for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paperradar.engine import Engine, make_engine
from paperradar.model import Author, Paper
from paperradar.sources import Batch


def new_engine(tmp_path: Path, name: str = "test.db") -> Engine:
    return make_engine(f"sqlite:///{tmp_path / name}")


def paper(ids: list[str], title: str, **fields: Any) -> Paper:
    fields.setdefault("abstract", f"An abstract about {title.lower()} with enough words to be one.")
    authors = fields.pop("authors", ["Ada Lovelace"])
    fields["authors"] = [a if isinstance(a, Author) else Author(a) for a in authors]
    source = fields.pop("source", "test")
    return Paper.from_ids(ids=ids, title=title, source=source, **fields)


def add(engine: Engine, *papers: Paper, source: str = "test") -> None:
    engine.ingest([Batch(source, list(papers))])


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, tzinfo=UTC)

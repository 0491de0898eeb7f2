"""Retrieval benchmarks in BEIR layout: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paperradar.errors import SourceError
from paperradar.model import Paper

__all__ = ["BeirSet", "load_beir"]

ID_PREFIX = "beir:"


@dataclass(slots=True)
class BeirSet:
    queries: dict[str, str]  # query id -> text, only those judged in the split
    qrels: dict[str, dict[str, int]]  # query id -> {paper id: relevance}
    corpus_path: Path

    def papers(self) -> Iterator[Paper]:
        with self.corpus_path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                    yield Paper(
                        id=ID_PREFIX + str(doc["_id"]),
                        title=str(doc.get("title") or ""),
                        abstract=str(doc.get("text") or ""),
                        sources=["beir"],
                    )
                except (ValueError, KeyError) as exc:
                    raise SourceError(
                        f"bad corpus line: {exc}", location=f"{self.corpus_path}:{n}"
                    ) from exc


def load_beir(folder: Path, split: str) -> BeirSet:
    corpus, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels_file = folder / "qrels" / f"{split}.tsv"
    for f in (corpus, queries_file, qrels_file):
        if not f.is_file():
            raise SourceError(f"missing {f.name}: expected a BEIR folder", location=str(f))
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[ID_PREFIX + row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with queries_file.open("rb") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                if str(q["_id"]) in qrels:
                    queries[str(q["_id"])] = str(q["text"])
    return BeirSet(queries, {q: r for q, r in qrels.items() if q in queries}, corpus)

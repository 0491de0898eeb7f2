"""The embedding job: embed the papers whose vector is missing or stale, batch by batch.

Each batch is written (and added to the vector index) as soon as it is done, so an interrupted
run loses at most one batch and the next run resumes where it stopped. Papers are picked by
content hash (``Storage.embedding_backlog``): an unchanged paper is never embedded twice, a
changed title or abstract is embedded again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from paperradar.embed import Embedder
from paperradar.search.vector import VectorIndex
from paperradar.storage import Storage

__all__ = ["EmbedProgress", "EmbedReport", "embed_backlog"]

# (papers embedded so far in this run, papers that needed it when the run started)
EmbedProgress = Callable[[int, int], None]


@dataclass(slots=True)
class EmbedReport:
    model: str
    embedded: int = 0
    remaining: int = 0  # papers still without a current vector after the run
    total_vectors: int = 0
    seconds: float = 0.0
    docs_per_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def embed_backlog(
    storage: Storage,
    embedder: Embedder,
    index: VectorIndex | None,
    *,
    batch_size: int = 32,
    limit: int | None = None,
    progress: EmbedProgress | None = None,
) -> EmbedReport:
    report = EmbedReport(model=embedder.name)
    todo = max(storage.count_papers() - storage.count_embeddings(embedder.name), 0)
    if limit is not None:
        todo = min(todo, limit)
    started = time.perf_counter()
    batch_size = max(1, batch_size)
    if progress is not None:
        progress(0, todo)
    while limit is None or report.embedded < limit:
        want = batch_size if limit is None else min(batch_size, limit - report.embedded)
        rows = storage.embedding_backlog(embedder.name, want)
        if not rows:
            break
        vectors = embedder.embed_documents([text for _, _, text in rows])
        storage.write_embeddings(
            embedder.name,
            [
                (pk, digest, np.asarray(vec, dtype="<f4").tobytes())
                for (pk, digest, _), vec in zip(rows, vectors, strict=True)
            ],
        )
        if index is not None:
            index.add([pk for pk, _, _ in rows], vectors)
        report.embedded += len(rows)
        if progress is not None:
            progress(report.embedded, max(todo, report.embedded))
    if index is not None:
        index.save()
    report.seconds = round(time.perf_counter() - started, 3)
    report.docs_per_s = round(report.embedded / report.seconds, 1) if report.seconds else 0.0
    report.total_vectors = storage.count_embeddings(embedder.name)
    report.remaining = max(storage.count_papers() - report.total_vectors, 0)
    return report

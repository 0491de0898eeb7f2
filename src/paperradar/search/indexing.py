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
    pk_range: tuple[int, int] | None = None,
    before_write: Callable[[], None] | None = None,
) -> EmbedReport:
    """Embed the backlog (of the pks in ``[start, end)`` of ``pk_range`` when given: one share
    of a backlog that several workers split, see ``paperradar.worker.run_embed``).
    ``before_write`` runs before each batch is stored and may raise to stop without storing it
    (a worker that lost its lease)."""
    report = EmbedReport(model=embedder.name)
    todo = max(storage.count_papers() - storage.count_embeddings(embedder.name), 0)
    if limit is not None:
        todo = min(todo, limit)
    pk_from, pk_to = pk_range if pk_range is not None else (0, None)
    if pk_to is not None:
        todo = min(todo, pk_to - pk_from)
    started = time.perf_counter()
    batch_size = max(1, batch_size)
    if progress is not None:
        progress(0, todo)
    while limit is None or report.embedded < limit:
        want = batch_size if limit is None else min(batch_size, limit - report.embedded)
        rows = storage.embedding_backlog(embedder.name, want, pk_from=pk_from, pk_to=pk_to)
        if not rows:
            break
        vectors = embedder.embed_documents([text for _, _, text in rows])
        if before_write is not None:
            before_write()
        storage.write_embeddings(
            embedder.name,
            [
                (pk, digest, np.asarray(vec, dtype="<f4").tobytes())
                for (pk, digest, _), vec in zip(rows, vectors, strict=True)
            ],
        )
        report.embedded += len(rows)
        if progress is not None:  # right after the write: a worker's ledger of what is stored
            progress(report.embedded, max(todo, report.embedded))
        if index is not None:
            index.add([pk for pk, _, _ in rows], vectors)
    if index is not None:
        index.save()
    report.seconds = round(time.perf_counter() - started, 3)
    report.docs_per_s = round(report.embedded / report.seconds, 1) if report.seconds else 0.0
    report.total_vectors = storage.count_embeddings(embedder.name)
    report.remaining = max(storage.count_papers() - report.total_vectors, 0)
    return report

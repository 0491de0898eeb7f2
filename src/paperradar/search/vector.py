"""Vector retrieval over stored embeddings: exact (numpy) for small collections, an HNSW index
(usearch, int8-quantized, candidates re-ranked exactly from the stored float32 vectors) for
large ones, persisted next to the SQLite file.

The index is a cache of the ``embeddings`` table: it can always be rebuilt from it
(``paperradar index rebuild``). A missing or unreadable file is rebuilt with a warning; without
usearch, search is exact. On PostgreSQL the database's own pgvector index serves instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paperradar.storage import PaperFilter, Storage

__all__ = [
    "ANN_THRESHOLD",
    "CONNECTIVITY",
    "EXPANSION_ADD",
    "IndexInfo",
    "VectorIndex",
    "index_path_for",
]

log = logging.getLogger(__name__)
ANN_THRESHOLD = 20_000  # below this many vectors an exact scan is fast enough (< 2 ms)
MAX_OVERSAMPLE = 4096  # filtered ANN search widens up to this before an exact filtered scan
ANN_DTYPE = "i8"  # 1 byte a dimension: 1M x 384-d fit well under 1 GB with the graph
RERANK = 4  # i8 alone ranks near neighbours loosely: take 4k candidates, re-rank them exactly
EXPANSION_SEARCH = 64  # HNSW breadth at query time (see benchmarks/ann_index.py)
CONNECTIVITY = 16  # HNSW links per node
EXPANSION_ADD = 128  # HNSW breadth while inserting
RECHECK_S = 10.0  # how often a serving process looks for vectors written by another process
Matrix = npt.NDArray[np.float32]


def index_path_for(storage_url: str, model: str) -> Path | None:
    """``<db file>.<model>.usearch`` for a SQLite file; None for memory or a server database."""
    if not storage_url.startswith("sqlite:///"):
        return None
    db = storage_url[len("sqlite:///") :]
    if not db or db == ":memory:":
        return None
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", model).strip("-")
    return Path(f"{db}.{slug}.usearch")


@dataclass(slots=True)
class IndexInfo:
    model: str
    kind: str  # "exact", "hnsw" or "pgvector"
    vectors: int
    path: str | None
    message: str | None = None


def _usearch() -> Any | None:
    try:
        from usearch.index import Index
    except ImportError:
        return None
    return Index


class VectorIndex:
    """Nearest stored vectors of one model, with the query syntax's filters applied."""

    def __init__(
        self,
        storage: Storage,
        model: str,
        dim: int,
        *,
        path: Path | None = None,
        threshold: int = ANN_THRESHOLD,
    ) -> None:
        self.storage = storage
        self.model = model
        self.dim = dim
        self.path = path
        self.threshold = threshold
        self.server_side = storage.url.startswith("postgresql")
        self.message: str | None = None
        self._pks = np.zeros(0, dtype=np.int64)
        self._mat = np.zeros((0, dim), dtype=np.float32)
        self._ann: Any | None = None
        self._count = 0
        self._max_pk = 0
        self._checked = 0.0
        self._loaded = False

    # -- building --------------------------------------------------------------------------------
    def _meta_path(self) -> Path | None:
        return self.path.with_suffix(self.path.suffix + ".json") if self.path else None

    def load(self) -> None:
        """Read the persisted index if it matches the database, else build it."""
        self._loaded = True
        if self.server_side:
            self._count = self.storage.count_embeddings(self.model)
            return
        stored = self.storage.count_embeddings(self.model)
        index_cls = _usearch()
        meta_path = self._meta_path()
        if stored >= self.threshold and index_cls is not None and self.path and meta_path:
            if self.path.is_file() and meta_path.is_file():
                try:
                    meta = json.loads(meta_path.read_text())
                    ann = index_cls.restore(str(self.path), view=False)
                    if ann is None or len(ann) != int(meta["vectors"]) or ann.ndim != self.dim:
                        raise ValueError("the file does not match its description")
                    ann.expansion_search = EXPANSION_SEARCH
                    self._ann = ann
                    self._count = int(meta["vectors"])
                    self._max_pk = int(meta["max_pk"])
                    self._checked = time.monotonic()
                    self.refresh(force=True)
                    return
                except (OSError, ValueError, KeyError, RuntimeError) as exc:
                    self.message = (
                        f"the vector index {self.path} could not be read ({exc}); rebuilt it"
                    )
                    log.warning("%s", self.message)
            elif self.path.exists() or meta_path.exists():
                self.message = f"the vector index {self.path} was incomplete; rebuilt it"
                log.warning("%s", self.message)
        self.rebuild(progress=None)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> IndexInfo:
        """Build the index from every stored vector of the model (and save it)."""
        self._loaded = True
        self._pks = np.zeros(0, dtype=np.int64)
        self._mat = np.zeros((0, self.dim), dtype=np.float32)
        self._ann = None
        self._count = 0
        self._max_pk = 0
        if self.server_side:
            self._count = self.storage.count_embeddings(self.model)
            return self.info()
        total = self.storage.count_embeddings(self.model)
        index_cls = _usearch()
        if total >= self.threshold and index_cls is not None:
            self._ann = self._new_ann(index_cls, total)
        elif total >= self.threshold:
            self.message = "usearch is not installed: vector search is exact (pip install usearch)"
        done = 0
        for batch in self.storage.iter_embeddings(self.model, batch_size=20000):
            pks, mat = _decode(batch, self.dim)
            self._append(pks, mat)
            done += len(pks)
            if progress is not None:
                progress(done, total)
        self.save()
        self._checked = time.monotonic()
        return self.info()

    def _new_ann(self, index_cls: Any, expected: int) -> Any:
        ann = index_cls(
            ndim=self.dim,
            metric="cos",
            dtype=ANN_DTYPE,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        return ann

    def _append(self, pks: npt.NDArray[np.int64], mat: Matrix) -> None:
        if not len(pks):
            return
        if self._ann is not None:
            self._ann.add(pks, mat, threads=os.cpu_count() or 1)
        else:
            self._pks = np.concatenate([self._pks, pks])
            self._mat = np.concatenate([self._mat, mat])
            if len(self._pks) >= self.threshold:
                index_cls = _usearch()
                if index_cls is not None:  # grew past the threshold: move into an ANN index
                    self._ann = self._new_ann(index_cls, len(self._pks))
                    self._ann.add(self._pks, self._mat, threads=os.cpu_count() or 1)
                    self._pks = np.zeros(0, dtype=np.int64)
                    self._mat = np.zeros((0, self.dim), dtype=np.float32)
        self._count += len(pks)
        self._max_pk = max(self._max_pk, int(pks.max()))

    def add(self, pks: Sequence[int], vectors: Matrix) -> None:
        """Add or replace vectors (after an embedding batch): the incremental update."""
        if self.server_side:
            self._count = self.storage.count_embeddings(self.model)
            return
        if not self._loaded:
            self.load()
            return  # loading read them from the database already
        arr = np.asarray(pks, dtype=np.int64)
        existing = self._remove(arr)
        self._count -= existing
        self._append(arr, np.asarray(vectors, dtype=np.float32))

    def _remove(self, pks: npt.NDArray[np.int64]) -> int:
        if self._ann is not None:
            present = [int(p) for p in pks if self._ann.contains(int(p))]
            if present:
                self._ann.remove(present)
            return len(present)
        if not len(self._pks):
            return 0
        keep = ~np.isin(self._pks, pks)
        removed = int((~keep).sum())
        if removed:
            self._pks, self._mat = self._pks[keep], self._mat[keep]
        return removed

    def save(self) -> None:
        meta_path = self._meta_path()
        if self._ann is None or self.path is None or meta_path is None:
            return
        try:
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            self._ann.save(str(tmp))
            os.replace(tmp, self.path)
            meta = {"model": self.model, "vectors": len(self._ann), "max_pk": self._max_pk}
            meta_path.write_text(json.dumps(meta))
        except (OSError, RuntimeError) as exc:
            log.warning("could not save the vector index %s: %s", self.path, exc)

    def refresh(self, *, force: bool = False) -> None:
        """Pick up vectors another process (the worker) wrote since we loaded."""
        if self.server_side or not self._loaded:
            return
        now = time.monotonic()
        if not force and now - self._checked < RECHECK_S:
            return
        self._checked = now
        stored = self.storage.count_embeddings(self.model)
        if stored == self._count:
            return
        if stored < self._count:  # papers were deleted or merged away: start again
            self.rebuild()
            return
        for batch in _embeddings_after(self.storage, self.model, self._max_pk):
            pks, mat = _decode(batch, self.dim)
            self._append(pks, mat)
        if self._count != stored:  # re-embedded rows of old pks: rebuild for exactness
            self.rebuild()

    # -- queries ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        if not self._loaded:
            self.load()
        return self._count

    def info(self) -> IndexInfo:
        kind = "pgvector" if self.server_side else "hnsw" if self._ann is not None else "exact"
        path = str(self.path) if self.path and self._ann is not None else None
        return IndexInfo(self.model, kind, self._count, path, self.message)

    def vectors_for(self, pks: Sequence[int]) -> dict[int, Matrix]:
        """Stored vectors of ``pks`` (those that have one)."""
        if not self._loaded:
            self.load()
        out: dict[int, Matrix] = {}
        if self._ann is None and not self.server_side:
            where = {int(p): i for i, p in enumerate(self._pks.tolist())}
            for pk in pks:
                if int(pk) in where:
                    out[int(pk)] = self._mat[where[int(pk)]]
        wanted = [int(p) for p in pks if int(p) not in out]
        for pk, raw in self.storage.embeddings_for(self.model, wanted).items():
            out[pk] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        return out

    def search(self, vector: Matrix, flt: PaperFilter | None, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest stored vectors passing ``flt``: (pk, cosine similarity), best first."""
        if not self._loaded:
            self.load()
        self.refresh()
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.server_side:
            return self.storage.nearest_embeddings(
                self.model, query.astype("<f4").tobytes(), k, flt
            )
        filtered = flt is not None and not flt.is_empty()
        if self._ann is None:
            return self._exact(query, flt if filtered else None, k)
        want = k + max((RERANK - 1) * min(k, 20), 30)  # 4k for small k, k + 60 for deep lists
        while True:
            found = self._ann.search(query, min(want, self._count))
            keys = np.asarray(found.keys, dtype=np.int64).reshape(-1)
            pks = [int(p) for p in keys]
            if filtered:
                assert flt is not None
                keep = self.storage.filter_pks(flt, pks)
                pks = [p for p in pks if p in keep]
            if len(pks) >= k or want >= self._count:
                return self._rerank(query, pks, k)
            if want >= MAX_OVERSAMPLE:  # a narrow filter: scan exactly what passes it
                return self.storage.nearest_embeddings(
                    self.model, query.astype("<f4").tobytes(), k, flt
                )
            want *= 8

    def _rerank(self, query: Matrix, pks: list[int], k: int) -> list[tuple[int, float]]:
        """Exact cosine of the candidates from their stored float32 vectors."""
        stored = self.storage.embeddings_for(self.model, pks)
        have = [p for p in pks if p in stored]
        if not have:
            return []
        mat = np.frombuffer(b"".join(stored[p] for p in have), dtype="<f4").reshape(len(have), -1)
        norms = np.linalg.norm(mat, axis=1)
        sims = (mat @ query) / np.where(norms == 0.0, 1.0, norms)
        order = np.argsort(-sims, kind="stable")[:k]
        return [(have[i], float(sims[i])) for i in order]

    def _exact(self, query: Matrix, flt: PaperFilter | None, k: int) -> list[tuple[int, float]]:
        if not len(self._pks):
            return []
        sims = self._mat @ query
        order = np.argsort(-sims, kind="stable")
        if flt is None:
            top = order[:k]
            return [(int(self._pks[i]), float(sims[i])) for i in top]
        keep = self.storage.filter_pks(flt, self._pks.tolist())
        out: list[tuple[int, float]] = []
        for i in order:
            pk = int(self._pks[i])
            if pk in keep:
                out.append((pk, float(sims[i])))
                if len(out) >= k:
                    break
        return out


def _decode(batch: list[tuple[int, bytes]], dim: int) -> tuple[npt.NDArray[np.int64], Matrix]:
    pks = np.fromiter((pk for pk, _ in batch), dtype=np.int64, count=len(batch))
    raw = b"".join(v for _, v in batch)
    mat = np.frombuffer(raw, dtype="<f4").reshape(len(batch), -1).astype(np.float32)
    if mat.shape[1] != dim:
        raise ValueError(f"stored vectors have {mat.shape[1]} dimensions, the model {dim}")
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return pks, (mat / np.where(norms == 0.0, 1.0, norms)).astype(np.float32)


def _embeddings_after(storage: Storage, model: str, after_pk: int) -> list[list[tuple[int, bytes]]]:
    """Stored vectors with a pk above ``after_pk`` (new papers since the index was built)."""
    return list(storage.iter_embeddings(model, batch_size=20000, after=after_pk))

"""Vector retrieval over stored embeddings: exact (numpy) for small collections, an IVF index
(faiss: k-means lists, int8 scalar-quantized codes, the ``nprobe`` nearest lists scanned, the
candidates re-ranked exactly from the stored float32 vectors) for large ones, persisted next to the
SQLite file.

The index is a cache of the ``embeddings`` table: it can always be rebuilt from it
(``paperradar index rebuild``). A missing, unreadable or mismatched file is rebuilt with a
warning; without faiss, search is exact. On PostgreSQL the database's own pgvector index serves
instead. Why IVF and not HNSW: see benchmarks/ann_index.py and README "Figures" (at 1 M clustered
vectors usearch HNSW reached recall 0.89 at best, and building it took ~25 CPU-minutes).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from paperradar.storage import PaperFilter, Storage

__all__ = [
    "ANN_THRESHOLD",
    "NPROBE",
    "IndexInfo",
    "VectorIndex",
    "index_path_for",
    "lists_for",
    "new_ivf",
]

log = logging.getLogger(__name__)
ANN_THRESHOLD = 20_000  # below this many vectors an exact scan is fast enough (< 2 ms)
MAX_OVERSAMPLE = 4096  # filtered ANN search widens up to this before an exact filtered scan
RERANK = 4  # int8 codes rank near neighbours loosely: take 4k candidates, re-rank them exactly
NPROBE = 128  # lists scanned per query (see benchmarks/ann_index.py; PAPERRADAR_ANN_NPROBE)
LISTS_PER_SQRT = 4  # k-means lists: 4 x sqrt(vectors) (4,000 at 1 M), at most MAX_LISTS
MAX_LISTS = 8192
TRAIN_PER_LIST = 40  # k-means training sample: this many vectors a list (faiss wants >= 39)
RETRAIN_GROWTH = 4  # an index trained on n vectors is retrained (rebuilt) when it holds 4 n
RECHECK_S = 10.0  # how often a serving process looks for vectors written by another process
FORMAT = "faiss-ivf-sq8/1"  # written to the .json description; another value: rebuild
Matrix = npt.NDArray[np.float32]
P = ParamSpec("P")
R = TypeVar("R")


def index_path_for(storage_url: str, model: str) -> Path | None:
    """``<db file>.<model>.ivf`` for a SQLite file; None for memory or a server database."""
    if not storage_url.startswith("sqlite:///"):
        return None
    db = storage_url[len("sqlite:///") :]
    if not db or db == ":memory:":
        return None
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", model).strip("-")
    return Path(f"{db}.{slug}.ivf")


@dataclass(slots=True)
class IndexInfo:
    model: str
    kind: str  # "exact", "ivf" or "pgvector"
    vectors: int
    path: str | None
    message: str | None = None


def _faiss() -> Any | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def lists_for(vectors: int) -> int:
    """How many k-means lists an index of ``vectors`` vectors gets."""
    return int(min(MAX_LISTS, max(8, round(LISTS_PER_SQRT * math.sqrt(max(vectors, 1))))))


def new_ivf(faiss: Any, sample: Matrix, vectors: int) -> Any:
    """An empty IVF index (inner product of normalised vectors, int8 codes of the residuals),
    its lists trained by k-means on ``sample`` for a collection of ``vectors`` vectors."""
    lists = min(lists_for(vectors), max(1, len(sample) // 39))  # faiss wants >= 39 per list
    index = faiss.index_factory(sample.shape[1], f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove/replace by pk in O(1)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def _locked(
    method: Callable[Concatenate[VectorIndex, P], R],
) -> Callable[Concatenate[VectorIndex, P], R]:
    """Hold the index's lock: faiss must not search a list while another thread appends to it
    (a web process's searches refresh the index from the database)."""

    def locked(self: VectorIndex, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    locked.__doc__ = method.__doc__
    return locked


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
        nprobe: int = NPROBE,
    ) -> None:
        if nprobe < 1:
            raise ValueError(f"nprobe must be at least 1, not {nprobe}")
        self.storage = storage
        self.model = model
        self.dim = dim
        self.path = path
        self.threshold = threshold
        self.nprobe = nprobe
        self.server_side = storage.url.startswith("postgresql")
        self.message: str | None = None
        self._pks = np.zeros(0, dtype=np.int64)
        self._mat = np.zeros((0, dim), dtype=np.float32)
        self._ann: Any | None = None
        self._trained_on = 0  # vectors the IVF lists were trained for
        self._count = 0
        self._max_pk = 0
        self._checked = 0.0
        self._loaded = False
        self._lock = threading.RLock()
        self._refreshing: threading.Thread | None = None

    # -- building --------------------------------------------------------------------------------
    def _meta_path(self) -> Path | None:
        return self.path.with_suffix(self.path.suffix + ".json") if self.path else None

    @_locked
    def load(self) -> None:
        """Read the persisted index if it matches the database, else build it."""
        self._loaded = True
        if self.server_side:
            self._count = self.storage.count_embeddings(self.model)
            return
        stored = self.storage.count_embeddings(self.model)
        faiss = _faiss()
        meta_path = self._meta_path()
        if stored >= self.threshold and faiss is not None and self.path and meta_path:
            if self.path.is_file() and meta_path.is_file():
                try:
                    meta = json.loads(meta_path.read_text())
                    if meta.get("format") != FORMAT or meta.get("model") != self.model:
                        raise ValueError("it was written for another model or index format")
                    ann = faiss.read_index(str(self.path))
                    if ann.ntotal != int(meta["vectors"]) or ann.d != self.dim:
                        raise ValueError("the file does not match its description")
                    ann.nprobe = self.nprobe
                    self._ann = ann
                    self._count = int(meta["vectors"])
                    self._max_pk = int(meta["max_pk"])
                    self._trained_on = int(meta["trained_on"])
                    self._checked = time.monotonic()
                    self.refresh(force=True)
                    return
                except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                    self.message = (
                        f"the vector index {self.path} could not be read ({exc}); rebuilt it"
                    )
                    log.warning("%s", self.message)
            elif self.path.exists() or meta_path.exists():
                self.message = f"the vector index {self.path} was incomplete; rebuilt it"
                log.warning("%s", self.message)
        self.rebuild(progress=None)

    @_locked
    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> IndexInfo:
        """Build the index from every stored vector of the model (and save it): k-means lists
        trained on a sample, then every vector added to its nearest list."""
        self._loaded = True
        self._pks = np.zeros(0, dtype=np.int64)
        self._mat = np.zeros((0, self.dim), dtype=np.float32)
        self._ann = None
        self._trained_on = 0
        self._count = 0
        self._max_pk = 0
        if self.server_side:
            self._count = self.storage.count_embeddings(self.model)
            return self.info()
        total = self.storage.count_embeddings(self.model)
        faiss = _faiss()
        if total >= self.threshold and faiss is not None:
            self._ann = new_ivf(faiss, self._sample(total), total)
            self._ann.nprobe = self.nprobe
            self._trained_on = total
        elif total >= self.threshold:
            self.message = "faiss is not installed: vector search is exact (pip install faiss-cpu)"
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

    def _sample(self, total: int) -> Matrix:
        """A uniform random sample of the stored vectors to train the lists on (one pass)."""
        share = min(1.0, lists_for(total) * TRAIN_PER_LIST / max(total, 1))
        rng = np.random.default_rng(0)
        parts = []
        for batch in self.storage.iter_embeddings(self.model, batch_size=20000):
            pick = rng.random(len(batch)) < share
            if pick.any():
                parts.append(_decode([batch[i] for i in np.flatnonzero(pick)], self.dim)[1])
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)

    def _append(self, pks: npt.NDArray[np.int64], mat: Matrix) -> None:
        if not len(pks):
            return
        if self._ann is not None:
            self._ann.add_with_ids(mat, pks)
        else:
            self._pks = np.concatenate([self._pks, pks])
            self._mat = np.concatenate([self._mat, mat])
            if len(self._pks) >= self.threshold:
                faiss = _faiss()
                if faiss is not None:  # grew past the threshold: move into an IVF index
                    self._ann = new_ivf(faiss, self._mat, len(self._pks))
                    self._ann.nprobe = self.nprobe
                    self._trained_on = len(self._pks)
                    self._ann.add_with_ids(self._mat, self._pks)
                    self._pks = np.zeros(0, dtype=np.int64)
                    self._mat = np.zeros((0, self.dim), dtype=np.float32)
        self._count += len(pks)
        self._max_pk = max(self._max_pk, int(pks.max()))

    @_locked
    def add(self, pks: Sequence[int], vectors: Matrix) -> None:
        """Add or replace vectors (after an embedding batch): the incremental update. An index
        that has grown to RETRAIN_GROWTH times the collection its lists were trained for is
        rebuilt, so that the lists stay about as long as at the start."""
        if self.server_side:
            self._count = self.storage.count_embeddings(self.model)
            return
        if not self._loaded:
            self.load()
            return  # loading read them from the database already
        arr = np.asarray(pks, dtype=np.int64)
        mat = np.asarray(vectors, dtype=np.float32).reshape(len(arr), -1)
        if mat.shape[1] != self.dim:
            raise ValueError(f"vectors have {mat.shape[1]} dimensions, the index {self.dim}")
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        self._count -= self._remove(arr)
        self._append(arr, (mat / np.where(norms == 0.0, 1.0, norms)).astype(np.float32))
        if self._ann is not None and self._count >= RETRAIN_GROWTH * self._trained_on:
            self.rebuild()

    def _remove(self, pks: npt.NDArray[np.int64]) -> int:
        if self._ann is not None:
            return int(self._ann.remove_ids(np.ascontiguousarray(pks, dtype=np.int64)))
        if not len(self._pks):
            return 0
        keep = ~np.isin(self._pks, pks)
        removed = int((~keep).sum())
        if removed:
            self._pks, self._mat = self._pks[keep], self._mat[keep]
        return removed

    @_locked
    def save(self) -> None:
        """Write the index and its description next to the database, each atomically (the
        description last: a crash between the two leaves a mismatch, which is rebuilt)."""
        faiss = _faiss()
        meta_path = self._meta_path()
        if self._ann is None or faiss is None or self.path is None or meta_path is None:
            return
        meta = {
            "format": FORMAT,
            "model": self.model,
            "dim": self.dim,
            "vectors": int(self._ann.ntotal),
            "max_pk": self._max_pk,
            "trained_on": self._trained_on,
            "lists": int(self._ann.nlist),
        }
        try:
            tmp = self.path.with_suffix(f"{self.path.suffix}.{os.getpid()}.tmp")  # one a writer
            faiss.write_index(self._ann, str(tmp))
            os.replace(tmp, self.path)
            meta_tmp = meta_path.with_suffix(f".json.{os.getpid()}.tmp")
            meta_tmp.write_text(json.dumps(meta))
            os.replace(meta_tmp, meta_path)
            old = self.path.with_suffix(".usearch")  # the HNSW file of earlier versions
            for stale in (old, old.with_suffix(".usearch.json")):
                stale.unlink(missing_ok=True)
        except (OSError, RuntimeError) as exc:
            log.warning("could not save the vector index %s: %s", self.path, exc)

    def refresh(self, *, force: bool = False) -> None:
        """Pick up vectors another process (the worker) wrote since we loaded. The count that
        says whether there are any is read without the lock, so searches go on meanwhile."""
        if self.server_side or not self._loaded:
            return
        now = time.monotonic()
        if not force and now - self._checked < RECHECK_S:
            return
        self._checked = now
        if self.storage.count_embeddings(self.model) == self._count:
            return
        with self._lock:  # something changed: count again, in step with our own appends
            self._catch_up()

    def _catch_up(self) -> None:
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

    def _refresh_beside(self) -> None:
        """``refresh`` on another thread, so that no search waits for it: its count of the
        stored vectors takes ~130 ms at a million on SQLite. The search that starts it, and
        those during it, see the index as it was."""
        if time.monotonic() - self._checked < RECHECK_S or self._refreshing is not None:
            return
        with self._lock:
            if self._refreshing is not None:
                return
            self._refreshing = threading.Thread(
                target=self._refresh_quietly, name="paperradar-vectors", daemon=True
            )
            self._refreshing.start()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # the next search tries again; the index stays usable
            log.warning("could not pick up new vectors: %s", exc)
        finally:
            self._refreshing = None

    def close(self) -> None:
        """Wait for a refresh in flight (its storage is about to close)."""
        refreshing = self._refreshing
        if refreshing is not None:
            refreshing.join()

    # -- queries ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        if not self._loaded:
            self.load()
        return self._count

    def info(self) -> IndexInfo:
        kind = "pgvector" if self.server_side else "ivf" if self._ann is not None else "exact"
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
        if self._ann is not None:
            self._refresh_beside()
        else:
            self.refresh()
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.server_side:
            return self.storage.nearest_embeddings(
                self.model, query.astype("<f4").tobytes(), k, flt
            )
        filtered = flt is not None and not flt.is_empty()
        ann = self._ann  # a rebuild in another thread replaces it, a refresh appends (locked)
        if ann is None:
            return self._exact(query, flt if filtered else None, k)
        want = k + max((RERANK - 1) * min(k, 20), 30)  # 4k for small k, k + 60 for deep lists
        while True:
            with self._lock:
                _, found = ann.search(query[None, :], min(want, self._count))
            pks = [int(p) for p in found[0] if p >= 0]  # -1: the probed lists had fewer
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

"""The Embedder interface and the pieces every backend shares (tokenising, pooling, norms)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from paperradar.errors import FeatureUnavailable

__all__ = [
    "Embedder",
    "Encoded",
    "WordPiece",
    "embed_batched",
    "mean_pool",
    "normalize_rows",
    "pad",
]

Matrix = npt.NDArray[np.float32]
MAX_QUERY_CHARS = 2000  # a very long query is cut (the model sees 256 tokens at most anyway)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dim`` dimensions."""

    name: str  # stored with every vector: vectors of different names never mix
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """One row per text, shape (len(texts), dim); an empty list gives shape (0, dim)."""
        ...

    def embed_query(self, text: str) -> Matrix:
        """One vector, shape (dim,)."""
        ...


def normalize_rows(mat: npt.NDArray[Any]) -> Matrix:
    out = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    return (out / np.where(norms == 0.0, 1.0, norms)).astype(np.float32, copy=False)


def mean_pool(hidden: npt.NDArray[Any], mask: npt.NDArray[Any]) -> Matrix:
    """Mean of the token vectors under the attention mask (sentence-transformers pooling)."""
    m = mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * m).sum(axis=1)
    pooled: Matrix = (summed / np.clip(m.sum(axis=1), 1e-9, None)).astype(np.float32)
    return pooled


class Encoded:
    """A padded batch of token ids: ``ids``, ``mask`` and ``types`` are int64 (batch, length)."""

    __slots__ = ("ids", "mask", "types")

    def __init__(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> None:
        self.ids = ids
        self.mask = mask
        self.types = np.zeros_like(ids)


class WordPiece:
    """A ``tokenizers`` tokenizer from a tokenizer.json file, truncating to ``max_length``."""

    def __init__(self, path: Path | None = None, *, max_length: int = 256) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - tokenizers is a default dependency
            raise FeatureUnavailable(
                "the 'tokenizers' package is missing: pip install tokenizers"
            ) from exc
        if path is None:
            ref = resources.files("paperradar.embed") / "data" / "all-MiniLM-L6-v2.tokenizer.json"
            path = Path(str(ref))
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise FeatureUnavailable(f"cannot read the tokenizer {path}: {exc}") from exc
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch([t[:20000] or " " for t in texts])]


def pad(rows: Sequence[Sequence[int]]) -> Encoded:
    length = max((len(r) for r in rows), default=0)
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return Encoded(ids, mask)


def embed_batched(
    tokenizer: WordPiece,
    texts: Sequence[str],
    run: Callable[[Encoded], Matrix],
    dim: int,
    batch_size: int = 32,
    *,
    unpadded: bool = False,
    workers: int = 1,
) -> Matrix:
    """Tokenise once, batch texts of similar length together, run, and restore the order.

    ``unpadded``: a batch holds texts of one token length only (a text without an equally long
    neighbour runs alone), for a model that takes no attention mask. ``workers``: batches run on
    that many threads at once (``run`` must be thread-safe; each call should use one core):
    on a busy 2-core machine two single-threaded calls side by side did 1.3-2.7x the work of one
    call on two threads, whose many small parallel steps each wait for the slower core."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    rows = tokenizer.token_ids(texts)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        if (
            last is None
            or len(last) >= batch_size
            or (unpadded and len(rows[last[0]]) != len(rows[i]))
        ):
            batches.append([i])
        else:
            last.append(i)

    def one(idx: list[int]) -> None:
        out[idx] = run(pad([rows[i] for i in idx]))

    if workers <= 1 or len(batches) <= 1:
        for idx in batches:
            one(idx)
    else:  # longest work first, so no thread is left with a long batch at the end
        batches.sort(key=lambda idx: -len(idx) * len(rows[idx[0]]))
        with ThreadPoolExecutor(min(workers, len(batches))) as pool:
            for _ in pool.map(one, batches):
                pass
    return normalize_rows(out)

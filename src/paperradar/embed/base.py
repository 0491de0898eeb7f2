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
    "split_windows",
]

Matrix = npt.NDArray[np.float32]
MAX_QUERY_CHARS = 2000  # a very long query is cut (the model sees 256 tokens at most anyway)
# Punctuation the fast int8 model leaves out (see WordPiece): measured on SciFact, dropping it
# costs nothing and frees ~13 % of an abstract's tokens for words.
PUNCTUATION = ",.;:()[]-/%='\""
WINDOW_STEP = 16  # second windows are a multiple of this many tokens long (see split_windows)


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
    m = mask.astype(np.float32)
    summed = np.matmul(m[:, None, :], hidden.astype(np.float32, copy=False))[:, 0]
    pooled: Matrix = (summed / np.clip(m.sum(axis=1, keepdims=True), 1e-9, None)).astype(np.float32)
    return pooled


class Encoded:
    """A padded batch of token ids: ``ids``, ``mask`` and ``types`` are int64 (batch, length).
    ``pool`` marks the tokens whose vectors are averaged (``mask`` unless a window leaves out
    the tokens it shares with the one before, see :func:`split_windows`)."""

    __slots__ = ("ids", "mask", "pool", "types")

    def __init__(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> None:
        self.ids = ids
        self.mask = mask
        self.pool = mask
        self.types = np.zeros_like(ids)


class WordPiece:
    """A ``tokenizers`` tokenizer from a tokenizer.json file, truncating to ``max_length``.

    ``drop``: characters whose tokens are left out (a punctuation mark is a token of its own in
    BERT's tokenizer); the text is then read further, so that ``max_length`` tokens of what is
    left still reach the model."""

    def __init__(self, path: Path | None = None, *, max_length: int = 256, drop: str = "") -> None:
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
        self.max_length = max_length
        self._drop = frozenset(i for c in drop if (i := self._tok.token_to_id(c)) is not None)
        self._tok.no_padding()
        # with tokens dropped, read on: abstracts are ~13 % punctuation, so twice is plenty
        self._tok.enable_truncation(max_length=max_length * 2 if self._drop else max_length)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets: ~13 % less time
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        rows = [e.ids for e in encode([t[:20000] or " " for t in texts])]
        if not self._drop:
            return rows
        drop, keep = self._drop, self.max_length - 1
        out = []
        for row in rows:  # [CLS] … [SEP]: the first and last token always stay
            kept = [row[0], *(t for t in row[1:-1] if t not in drop)][:keep]
            kept.append(row[-1])
            out.append(kept)
        return out


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
    window: int | None = None,
) -> Matrix:
    """Tokenise once, batch texts of similar length together, run, and restore the order.

    ``unpadded``: a batch holds texts of one token length only (a text without an equally long
    neighbour runs alone), for a model that takes no attention mask. ``workers``: batches run on
    that many threads at once (``run`` must be thread-safe; each call should use one core):
    on a busy 2-core machine two single-threaded calls side by side did 1.3-2.7x the work of one
    call on two threads, whose many small parallel steps each wait for the slower core.

    ``window``: a text longer than ``window`` tokens runs as two windows of ``window`` tokens
    (see :func:`split_windows`) and its vector is the mean of the vectors of all its tokens
    (each once). Attention costs the square of the length, so two windows of 128 cost less than
    one of 256, and with every long text cut into windows of one length, batches are full and
    few batch shapes are ever seen (OpenVINO prepares its kernels for each new one)."""
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    rows: Sequence[Sequence[int]] = tokenizer.token_ids(texts)
    owners = list(range(len(rows)))
    skips = [0] * len(rows)
    if window is not None:
        rows, owners, skips = split_windows(rows, window)
    out = np.zeros((len(rows), dim), dtype=np.float32)  # one row per window
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
        enc = pad([rows[i] for i in idx])
        if any(skips[i] for i in idx):
            enc.pool = enc.mask.copy()
            for j, i in enumerate(idx):
                enc.pool[j, 1 : 1 + skips[i]] = 0
        out[idx] = run(enc)

    if workers <= 1 or len(batches) <= 1:
        for idx in batches:
            one(idx)
    else:  # longest work first, so no thread is left with a long batch at the end
        batches.sort(key=lambda idx: -len(idx) * len(rows[idx[0]]))
        with ThreadPoolExecutor(min(workers, len(batches))) as pool:
            for _ in pool.map(one, batches):
                pass
    if window is None:
        return normalize_rows(out)
    # the mean over all of a text's tokens: each window's mean weighted by its pooled tokens
    weights = np.array([len(r) - k for r, k in zip(rows, skips, strict=True)], dtype=np.float32)
    pooled = np.zeros((len(texts), dim), dtype=np.float32)
    np.add.at(pooled, np.array(owners, dtype=np.int64), out * weights[:, None])
    return normalize_rows(pooled)


def split_windows(
    rows: Sequence[Sequence[int]], window: int, step: int = WINDOW_STEP
) -> tuple[list[list[int]], list[int], list[int]]:
    """Token rows (each ``[CLS] … [SEP]``) cut into windows: a row of at most ``window`` tokens
    stays whole; a longer one gives two windows, each between the row's own first and last
    token: the first ``window - 2`` inner tokens (``window`` tokens in all), and the tokens after
    them (a longer remainder is dropped: two windows of 128 cover 252 of a 256-token row's 254
    inner tokens). The second window is rounded up to a multiple of ``step`` tokens (at most
    ``window``) by reaching back into the first window's tokens, so that batches of one length
    fill up and few shapes are ever seen (OpenVINO prepares its kernels for each new one), while
    little is computed twice (under ``step`` tokens; a second window of exactly ``window``
    tokens, as before, recomputed up to 125 of them). Returned: the windows, the index of each
    one's row, and how many of each window's leading inner tokens the window before already has
    (left out of the mean, so that every token counts once)."""
    if window < 3:
        raise ValueError(f"a window holds [CLS], [SEP] and at least one token, not {window}")
    if step < 1:
        raise ValueError(f"the window step is a positive number of tokens, not {step}")
    inner = window - 2
    pieces: list[list[int]] = []
    owners: list[int] = []
    skips: list[int] = []
    for i, row in enumerate(rows):
        if len(row) <= window:
            pieces.append(list(row))
            owners.append(i)
            skips.append(0)
            continue
        first, body, last = row[0], row[1 : min(len(row) - 1, 1 + 2 * inner)], row[-1]
        rest = len(body) - inner  # inner tokens the first window leaves
        size = min(window, -(-(rest + 2) // step) * step)  # the second window, rounded up
        start = len(body) - (size - 2)
        pieces += [[first, *body[:inner], last], [first, *body[start:], last]]
        owners += [i, i]
        skips += [0, inner - start]
    return pieces, owners, skips

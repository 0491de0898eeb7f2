"""``paperradar migrate-data SRC DST``: copy a whole collection between backends, resumably.

What is copied: every paper with its versions (in primary-key order, batches of ``BATCH``), every
source's state (checkpoints, watermarks, counts, last error) and every embedding model's vectors.
Jobs and schedules are not copied: they are transient (a worker re-creates schedules on its first
start and fires what is due), and copying a job another worker holds would run it twice.

Resumable: each batch of papers is written together with the copy's own checkpoint, in one
transaction, as the destination's source state ``migrate-data:<hash of SRC>``; vectors are
written idempotently (replace by paper and model) and the checkpoint follows each batch. Kill it
at any point and run the same command again: it continues, and ends with the same destination.

Verified at the end: for papers (with versions), vectors per model and source states, the number
of rows and an order-independent checksum (the sum of per-row SHA-256 digests, mod 2^128) on both
sides. Run it with writers stopped; a paper changed in SRC during the copy shows as a mismatch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from paperradar.errors import PaperradarError
from paperradar.model import Paper, paper_to_dict
from paperradar.storage import SourceState, Storage
from paperradar.storage.sql import content_hash

__all__ = [
    "BATCH",
    "CheckRow",
    "TransferError",
    "checkpoint_key",
    "copy_collection",
    "iter_table",
    "verify_collection",
]

BATCH = 2000
MOD = 2**128
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class TransferError(PaperradarError):
    """The destination cannot take the copy (it holds other data) or the copy differs."""


def checkpoint_key(src: Storage) -> str:
    return "migrate-data:" + hashlib.sha1(src.url.encode()).hexdigest()[:12]


def _digest(obj: Any) -> int:
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:16], "big")


def _paper_digest(p: Paper) -> int:
    return _digest(paper_to_dict(p))


def _own_states(storage: Storage) -> list[SourceState]:
    return [s for s in storage.source_states() if not s.source.startswith("migrate-data:")]


def copy_collection(
    src: Storage, dst: Storage, *, progress: Progress | None = None, batch_size: int = BATCH
) -> dict[str, int]:
    """Copy papers, source states and vectors from ``src`` to ``dst`` (resuming a stopped copy).
    Returns how many rows this run wrote."""
    key = checkpoint_key(src)
    state = dst.source_state(key)
    cp: dict[str, Any] = dict(state.checkpoint) if state else {}
    if not cp and dst.count_papers() > 0:
        raise TransferError(
            f"the destination {dst.url} already holds {dst.count_papers():,} papers that are not "
            f"from a copy of {src.url}: migrate-data copies into an empty database"
        )
    written = {"papers": 0, "vectors": 0, "source_states": 0}
    tick = progress or (lambda _s, _d, _t: None)

    # 1. papers, each batch with the checkpoint in one transaction
    total = src.count_papers()
    last_pk = int(cp.get("pk", 0))
    done = int(cp.get("copied", 0))
    tick("papers", done, total)
    if cp.get("stage", "papers") == "papers":
        while True:
            rows = src.papers_after(last_pk, batch_size)
            if not rows:
                break
            last_pk = rows[-1][0]
            done += len(rows)
            cp = {"stage": "papers", "pk": last_pk, "copied": done}
            dst.write_papers(
                [p for _, p in rows], source=key, checkpoint=cp, counts=(len(rows), 0, 0, 0)
            )
            written["papers"] += len(rows)
            tick("papers", done, total)
        cp = {"stage": "vectors", "pk": last_pk, "copied": done}
        dst.write_papers([], source=key, checkpoint=cp)

    # 2. source states (idempotent: replaced as they are)
    if cp["stage"] == "vectors":
        states = _own_states(src)
        dst.restore_source_states(states)
        written["source_states"] = len(states)

        # 3. vectors, model by model, in paper order; the checkpoint follows each batch
        models = src.embedding_models()
        for model in models:
            if model in cp.get("models_done", []):
                continue
            vtotal = src.count_embeddings(model)
            after = int(cp.get("vec_pk", 0)) if cp.get("model") == model else 0
            vdone = 0
            for batch in src.iter_embeddings(model, batch_size):
                vdone += len(batch)
                batch = [(pk, v) for pk, v in batch if pk > after]
                if not batch:
                    tick(f"vectors {model}", vdone, vtotal)
                    continue
                papers = src.papers_by_pk([pk for pk, _ in batch])
                dst_pks = dst.pks_for_ids([p.id for p in papers.values()])
                vrows = [
                    (dst_pks[papers[pk].id], content_hash(papers[pk].title, papers[pk].abstract), v)
                    for pk, v in batch
                    if pk in papers and papers[pk].id in dst_pks
                ]
                dst.write_embeddings(model, vrows)
                written["vectors"] += len(vrows)
                cp = cp | {"model": model, "vec_pk": batch[-1][0]}
                dst.write_papers([], source=key, checkpoint=cp)
                tick(f"vectors {model}", vdone, vtotal)
            cp = cp | {"models_done": [*cp.get("models_done", []), model], "model": None}
            dst.write_papers([], source=key, checkpoint=cp)
        cp = cp | {"stage": "done"}
        dst.write_papers([], source=key, checkpoint=cp)
    return written


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One line of the verification table."""

    what: str
    src_count: int
    dst_count: int
    src_checksum: str
    dst_checksum: str

    @property
    def ok(self) -> bool:
        return self.src_count == self.dst_count and self.src_checksum == self.dst_checksum


def _papers_sum(
    storage: Storage, progress: Progress | None, label: str
) -> tuple[int, int, int, int]:
    n = versions = acc = vacc = 0
    total = storage.count_papers()
    for p in storage.iter_papers(BATCH):
        n += 1
        versions += len(p.versions)
        acc = (acc + _paper_digest(p)) % MOD
        vacc = (vacc + _digest([p.id, [asdict(v) for v in p.versions]])) % MOD
        if progress is not None and n % BATCH == 0:
            progress(label, n, total)
    return n, acc, versions, vacc


def _vectors_sum(storage: Storage, model: str) -> tuple[int, int]:
    n = acc = 0
    for batch in storage.iter_embeddings(model, BATCH):
        ids = storage.ids_for_pks([pk for pk, _ in batch])
        for pk, vec in batch:
            n += 1
            raw = ids.get(pk, "").encode() + b"\0" + vec
            acc = (acc + int.from_bytes(hashlib.sha256(raw).digest()[:16], "big")) % MOD
    return n, acc


def _hex(value: int) -> str:
    return f"{value:032x}"[:16]


def verify_collection(
    src: Storage, dst: Storage, *, progress: Progress | None = None
) -> list[CheckRow]:
    """Counts and checksums of papers, versions, vectors per model and source states."""
    s = _papers_sum(src, progress, "verify source")
    d = _papers_sum(dst, progress, "verify destination")
    rows = [
        CheckRow("papers", s[0], d[0], _hex(s[1]), _hex(d[1])),
        CheckRow("versions", s[2], d[2], _hex(s[3]), _hex(d[3])),
    ]
    for model in sorted(set(src.embedding_models()) | set(dst.embedding_models())):
        sv, dv = _vectors_sum(src, model), _vectors_sum(dst, model)
        rows.append(CheckRow(f"vectors {model}", sv[0], dv[0], _hex(sv[1]), _hex(dv[1])))
    ss, ds = _own_states(src), _own_states(dst)

    def states_sum(states: list[SourceState]) -> str:
        return _hex(sum(_digest(asdict(x)) for x in states) % MOD)

    rows.append(CheckRow("source states", len(ss), len(ds), states_sum(ss), states_sum(ds)))
    return rows


def iter_table(rows: list[CheckRow]) -> Iterator[tuple[str, str, str, str, str, str]]:
    for r in rows:
        yield (
            r.what,
            f"{r.src_count:,}",
            f"{r.dst_count:,}",
            r.src_checksum,
            r.dst_checksum,
            "ok" if r.ok else "DIFFERENT",
        )

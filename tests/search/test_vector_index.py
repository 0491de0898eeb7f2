"""The vector index: exact and IVF agree on small data (and on a few thousand clustered vectors to
a recall of 0.95), the file persists next to the database, a missing, corrupt or mismatched file
is rebuilt with a message, adds, replacements and another process's vectors are picked up
incrementally, and an index that has grown 4x is retrained. Also: the fusion functions'
properties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from helpers_engine import add, paper
from paperradar.embed import normalize_rows
from paperradar.search.fusion import linear_blend, make_fuse, rrf
from paperradar.search.vector import VectorIndex, index_path_for
from paperradar.storage import PaperFilter, open_storage

DIM = 16


def store_with_vectors(
    tmp_path: Path, n: int = 60, vecs: np.ndarray | None = None
) -> tuple[object, dict[int, np.ndarray]]:
    from paperradar.engine import make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    add(
        eng,
        *[
            paper(
                [f"2402.{i:05d}"], f"Paper number {i}", categories=["cs.LG" if i % 3 else "math.CO"]
            )
            for i in range(n)
        ],
    )
    storage = eng.storage
    pks = storage.pks_for_ids([f"2402.{i:05d}" for i in range(n)])
    if vecs is None:
        vecs = normalize_rows(np.random.default_rng(1).standard_normal((n, DIM)))
    rows = [(pk, "h", vecs[i].astype("<f4").tobytes()) for i, pk in enumerate(pks.values())]
    storage.write_embeddings("toy", rows)
    return storage, {pk: vecs[i] for i, pk in enumerate(pks.values())}


def _overlap(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> int:
    return len({pk for pk, _ in a} & {pk for pk, _ in b})


def test_ivf_file_persists_matches_exact_and_survives_corruption(tmp_path: Path) -> None:
    storage, vecs = store_with_vectors(tmp_path)
    path = index_path_for(storage.url, "toy")  # type: ignore[attr-defined]
    assert path is not None and path.parent == tmp_path
    exact = VectorIndex(storage, "toy", DIM, path=None, threshold=10_000)  # type: ignore[arg-type]
    ann = VectorIndex(storage, "toy", DIM, path=path, threshold=10)  # type: ignore[arg-type]
    query = next(iter(vecs.values()))
    want = exact.search(query, None, 5)
    got = ann.search(query, None, 5)
    assert ann.info().kind == "ivf" and exact.info().kind == "exact" and path.is_file()
    # candidates from int8 codes, re-ranked exactly: the exact top 5, in order
    assert [pk for pk, _ in got] == [pk for pk, _ in want]
    assert abs(got[0][1] - 1.0) < 1e-5  # the vector itself, its float32 cosine

    again = VectorIndex(storage, "toy", DIM, path=path, threshold=10)  # type: ignore[arg-type]
    assert len(again) == 60 and again.message is None  # read from the file, not rebuilt
    assert _overlap(again.search(query, None, 5), want) >= 4

    path.write_bytes(b"garbage" * 100)
    broken = VectorIndex(storage, "toy", DIM, path=path, threshold=10)  # type: ignore[arg-type]
    assert _overlap(broken.search(query, None, 5), want) >= 4
    assert broken.message and "rebuilt" in broken.message
    meta = path.with_suffix(".ivf.json")
    described = json.loads(meta.read_text())
    assert described["vectors"] == 60 and described["model"] == "toy"

    meta.write_text(json.dumps(described | {"model": "another"}))
    other = VectorIndex(storage, "toy", DIM, path=path, threshold=10)  # type: ignore[arg-type]
    assert len(other) == 60 and other.message and "another model" in other.message
    meta.unlink()
    incomplete = VectorIndex(storage, "toy", DIM, path=path, threshold=10)  # type: ignore[arg-type]
    assert len(incomplete) == 60 and incomplete.message and "incomplete" in incomplete.message
    assert meta.is_file() and not list(tmp_path.glob("*.tmp"))

    # filters apply to ANN results; a narrow one widens the search until k pass
    flt = PaperFilter(categories=["math.CO"])
    keep = storage.filter_pks(flt, list(vecs))  # type: ignore[attr-defined]
    hits = broken.search(query, flt, 5)
    assert len(hits) == 5 and {pk for pk, _ in hits} <= keep
    assert _overlap(hits, exact.search(query, flt, 5)) >= 4


def test_incremental_add_replaces_and_extends(tmp_path: Path) -> None:
    storage, vecs = store_with_vectors(tmp_path, n=30)
    index = VectorIndex(storage, "toy", DIM, path=tmp_path / "x.ivf", threshold=10)  # type: ignore[arg-type]
    assert len(index) == 30
    pk = next(iter(vecs))
    flipped = -vecs[pk]
    storage.write_embeddings("toy", [(pk, "h2", flipped.astype("<f4").tobytes())])  # type: ignore[attr-defined]
    index.add([pk], flipped[None, :])
    assert len(index) == 30
    assert index.search(flipped, None, 1)[0][0] == pk
    assert np.allclose(index.vectors_for([pk])[pk], flipped, atol=0.02)


def test_sqlite_memory_and_server_databases_have_no_index_file() -> None:
    assert index_path_for("sqlite:///:memory:", "m") is None
    assert index_path_for("postgresql://u@h/db", "m") is None
    assert str(index_path_for("sqlite:////data/p.db", "all-MiniLM-L6-v2/q8-onnx")).endswith(
        "p.db.all-MiniLM-L6-v2-q8-onnx.ivf"
    )


def test_exact_search_in_memory_database() -> None:
    storage = open_storage("sqlite:///:memory:")
    index = VectorIndex(storage, "none", DIM)
    assert len(index) == 0 and index.search(np.ones(DIM, np.float32), None, 3) == []
    storage.close()


ranked = st.lists(st.integers(0, 40), unique=True, max_size=25)


@given(ranked, ranked)
def test_rrf_ranks_each_candidate_once_best_first(a: list[int], b: list[int]) -> None:
    fused = rrf([a, b], [[1.0] * len(a), [1.0] * len(b)])
    assert sorted(pk for pk, _ in fused) == sorted(set(a) | set(b))
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    if a and b and a[0] == b[0]:
        assert fused[0][0] == a[0]  # first in both lists: first after fusion


@given(ranked, st.floats(0.0, 1.0))
def test_linear_blend_with_one_list_keeps_its_order(a: list[int], w: float) -> None:
    scores = [float(len(a) - i) for i in range(len(a))]
    fused = linear_blend([a, []], [scores, []], (1.0, 0.0))
    assert [pk for pk, _ in fused] == a
    blend = make_fuse(f"linear:{w}")([a, list(reversed(a))], [scores, scores])
    assert sorted(pk for pk, _ in blend) == sorted(a)


def test_a_serving_index_picks_up_vectors_another_process_wrote(tmp_path: Path) -> None:
    storage, _ = store_with_vectors(tmp_path, n=20)
    index = VectorIndex(storage, "toy", DIM)  # type: ignore[arg-type]
    assert len(index) == 20
    from paperradar.engine import make_engine

    other = make_engine(storage.url)  # type: ignore[attr-defined]
    add(other, paper(["2402.99999"], "A late paper"))
    pk = other.storage.pks_for_ids(["2402.99999"])["2402.99999"]
    late = normalize_rows(np.ones((1, DIM)))[0]
    other.storage.write_embeddings("toy", [(pk, "h", late.astype("<f4").tobytes())])
    other.close()
    index.refresh(force=True)
    assert len(index) == 21 and index.search(late, None, 1)[0][0] == pk


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Points around 40 centres: what IVF lists are made for (and, within a cluster, nearly
    equidistant points: what makes int8 codes alone rank loosely)."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.standard_normal((40, dim)))
    return normalize_rows(centres[rng.integers(0, 40, n)] + rng.standard_normal((n, dim)) * 0.15)


def test_ivf_recall_against_exact_on_clustered_vectors(tmp_path: Path) -> None:
    dim = 32
    data = clustered(3000, dim, 3)
    storage, vecs = store_with_vectors(tmp_path, n=3000, vecs=data)
    exact = VectorIndex(storage, "toy", dim, threshold=10**9)  # type: ignore[arg-type]
    ivf = VectorIndex(storage, "toy", dim, path=tmp_path / "c.ivf", threshold=500)  # type: ignore[arg-type]
    assert len(ivf) == 3000 and ivf.info().kind == "ivf"
    meta = json.loads((tmp_path / "c.ivf.json").read_text())
    assert meta["lists"] == 76 and meta["trained_on"] == 3000  # 4 sqrt(n) = 219, but >= 39 each
    queries = clustered(100, dim, 4)
    want = [exact.search(q, None, 10) for q in queries]
    hits = sum(_overlap(ivf.search(q, None, 10), w) for q, w in zip(queries, want, strict=True))
    assert hits / 1000 >= 0.95  # all 76 lists at the default nprobe: the int8 codes + re-rank
    ivf.nprobe = ivf._ann.nprobe = 4  # fewer lists scanned: lower recall
    few = sum(_overlap(ivf.search(q, None, 10), w) for q, w in zip(queries, want, strict=True))
    assert few < hits
    ivf.nprobe = ivf._ann.nprobe = 128
    flt = PaperFilter(categories=["math.CO"])  # a third of the papers
    keep = storage.filter_pks(flt, list(vecs))  # type: ignore[attr-defined]
    hits = 0
    for q in queries[:20]:
        got = ivf.search(q, flt, 10)
        assert len(got) == 10 and {pk for pk, _ in got} <= keep
        hits += _overlap(got, exact.search(q, flt, 10))
    assert hits / 200 >= 0.9


def test_ivf_add_remove_refresh_and_retrain_on_growth(tmp_path: Path) -> None:
    storage, vecs = store_with_vectors(tmp_path, n=40)
    path = tmp_path / "g.ivf"
    index = VectorIndex(storage, "toy", DIM, path=path, threshold=12)  # type: ignore[arg-type]
    assert len(index) == 40 and index.info().kind == "ivf"
    assert json.loads(path.with_suffix(".ivf.json").read_text())["trained_on"] == 40

    # another process (the worker) adds papers with vectors: the serving index picks them up
    from paperradar.engine import make_engine

    other = make_engine(storage.url)  # type: ignore[attr-defined]
    ids = [f"2403.{i:05d}" for i in range(130)]
    add(other, *[paper([i], f"Late paper {i}") for i in ids])
    late = normalize_rows(np.random.default_rng(9).standard_normal((130, DIM)))
    pks = list(other.storage.pks_for_ids(ids).values())
    other.storage.write_embeddings(
        "toy", [(pk, "h", late[i].astype("<f4").tobytes()) for i, pk in enumerate(pks)]
    )
    other.close()
    index.refresh(force=True)
    assert len(index) == 170 and index.search(late[5], None, 1)[0][0] == pks[5]

    # the incremental add replaces a vector; growing to 4x the trained size retrains the lists
    pk = next(iter(vecs))
    flipped = -vecs[pk]
    storage.write_embeddings("toy", [(pk, "h2", flipped.astype("<f4").tobytes())])  # type: ignore[attr-defined]
    index.add([pk], flipped[None, :])
    assert len(index) == 170 and index.search(flipped, None, 1)[0][0] == pk
    assert index.search(vecs[pk], None, 1)[0][0] != pk  # the old vector is gone
    assert index._trained_on == 170  # 170 >= 4 x 40: rebuilt
    again = VectorIndex(storage, "toy", DIM, path=path, threshold=12)  # type: ignore[arg-type]
    assert len(again) == 170 and again.message is None
    assert again.search(flipped, None, 1)[0][0] == pk

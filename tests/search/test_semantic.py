"""Search by meaning with the real bundled model: embedding job, hybrid/semantic search, similar,
fallbacks. A few dozen short documents keep it quick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers_engine import add, paper
from paperradar.cli import app
from paperradar.embed import load_embedder
from paperradar.embed.models import MiniLMOnnx
from paperradar.engine import Engine, make_engine
from paperradar.errors import FeatureUnavailable

TOPICS = [
    (
        "Myocardial infarction outcomes after early reperfusion",
        "Patients with acute heart attacks treated by primary angioplasty had lower mortality.",
    ),
    (
        "Register allocation in optimizing compilers",
        "Graph colouring assigns processor registers to program variables during code generation.",
    ),
    (
        "Deep residual networks for image recognition",
        "Very deep convolutional networks with shortcut connections classify photographs.",
    ),
    (
        "Transformer language models and in-context learning",
        "Large neural text models learn new tasks from a few examples in the prompt.",
    ),
    (
        "Glacier retreat under a warming climate",
        "Mountain ice masses are shrinking as global temperatures rise.",
    ),
    (
        "Quantum error correction with surface codes",
        "Logical qubits are protected from noise by topological stabilizer measurements.",
    ),
    (
        "Antibiotic resistance in hospital bacteria",
        "Microbes acquire genes that make common drugs ineffective against infections.",
    ),
    (
        "Monetary policy and inflation expectations",
        "Central bank interest rate decisions shape what households expect prices to do.",
    ),
]


def corpus(n: int = 24) -> list:
    out = []
    for i in range(n):
        title, abstract = TOPICS[i % len(TOPICS)]
        cat = "cs.LG" if i % 2 else "q-bio.TO"
        out.append(
            paper([f"2401.{i:05d}"], f"{title} (study {i})", abstract=abstract, categories=[cat])
        )
    return out


def engine_at(tmp_path: Path, models_dir: Path, **overrides: object) -> Engine:
    return make_engine(
        f"sqlite:///{tmp_path / 't.db'}", data_dir=models_dir.parent / models_dir.name, **overrides
    )


@pytest.fixture
def eng(tmp_path: Path, models_dir: Path) -> Engine:
    e = engine_at(tmp_path, models_dir, embed_batch_size=8)
    add(e, *corpus())
    yield e
    e.close()


def test_vectors_are_normalised_and_carry_meaning(models_dir: Path) -> None:
    model = load_embedder("default", cache_dir=models_dir)
    docs = model.embed_documents(
        ["heart attack treatment", "cardiac infarction therapy", "compiler register allocation"]
    )
    assert docs.shape == (3, model.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert docs[0] @ docs[1] > docs[0] @ docs[2] + 0.2
    odd = model.embed_documents(
        ["", "量子コンピュータの誤り訂正", "Квантовые вычисления", "x" * 50000]
    )
    assert np.isfinite(odd).all() and np.allclose(np.linalg.norm(odd, axis=1), 1.0, atol=1e-5)
    assert model.embed_documents([]).shape == (0, model.dim)


def test_int8_model_stays_close_to_the_fp32_computation(models_dir: Path) -> None:
    texts = [f"{t}. {a}" for t, a in TOPICS]
    q8 = load_embedder("minilm-q8", cache_dir=models_dir).embed_documents(texts)
    ref = load_embedder("minilm-onnx").embed_documents(texts)
    assert float((q8 * ref).sum(axis=1).min()) > 0.97


def test_embedding_resumes_and_is_cached_by_content(eng: Engine) -> None:
    first = eng.embed(limit=10)
    assert (first.embedded, first.total_vectors, first.remaining) == (10, 10, 14)
    partial = eng.search("heart attack", mode="hybrid")
    assert partial.mode == "hybrid" and "10 of 24" in (partial.notice or "")

    class Stop(Exception):
        pass

    def interrupt(done: int, total: int) -> None:
        if done >= 8:
            raise Stop

    with pytest.raises(Stop):
        eng.embed(progress=interrupt)
    assert eng.storage.count_embeddings(eng.embedder().name) == 18  # the finished batch stayed
    rest = eng.embed()
    assert (rest.embedded, rest.remaining) == (6, 0)
    assert eng.embed().embedded == 0  # nothing changed: nothing embedded again

    changed = corpus()[3]
    changed.abstract = changed.abstract + " A revised version adds a long section on volcanoes."
    add(eng, changed)
    again = eng.embed()
    assert again.embedded == 1 and again.total_vectors == 24


def test_semantic_search_finds_meaning_without_shared_words(eng: Engine) -> None:
    eng.embed()
    assert eng.search("cardiac arrest survival", mode="keyword").hits == []
    sem = eng.search("cardiac arrest survival", mode="semantic", limit=3)
    assert sem.notice is None and sem.mode == "semantic"
    assert all("Myocardial" in h.paper.title for h in sem.hits)
    assert all(h.matched_by == ["semantic"] for h in sem.hits)
    hyb = eng.search("heart attack mortality", mode="hybrid", limit=3)
    assert "Myocardial" in hyb.hits[0].paper.title and "semantic" in hyb.hits[0].matched_by
    # filters of the query syntax hold for vector results too
    only_cs = eng.search("heart attack cat:cs.LG", mode="semantic", limit=20)
    assert only_cs.hits and all("cs.LG" in h.paper.categories for h in only_cs.hits)
    # an exact arXiv id is pinned first in every mode
    pinned = eng.search("2401.00005", mode="hybrid")
    assert pinned.hits[0].paper.id == "2401.00005" and pinned.hits[0].matched_by == ["id"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "the of and",
        "-transformer",
        "量子コンピュータ",
        "Квантовая запутанность",
        pytest.param("heart " * 3000, id="very-long"),
    ],
)
def test_odd_queries_never_fail(eng: Engine, text: str) -> None:
    eng.embed()
    for mode in ("semantic", "hybrid"):
        result = eng.search(text, mode=mode, limit=5)  # type: ignore[arg-type]
        assert len(result.hits) <= 5
        assert all(h.paper.id.startswith("2401.") for h in result.hits)
    if text.startswith("heart"):
        assert result.notice and "shortened" in result.notice


def test_similar_uses_vectors_and_falls_back_to_keywords(eng: Engine) -> None:
    by_words = eng.similar("2401.00000", limit=3)
    assert by_words and all(h.matched_by == ["keyword"] for h in by_words)
    eng.embed()
    hits = eng.similar("2401.00000", limit=2)  # the two other papers of the same topic
    assert [h.matched_by for h in hits] == [["semantic"]] * 2
    assert {h.paper.id for h in hits} == {"2401.00008", "2401.00016"}
    both = eng.more_like_these(["2401.00000", "2401.00006"], limit=4)
    titles = {h.paper.title.split(" (")[0] for h in both}
    assert titles <= {TOPICS[0][0], TOPICS[6][0]} and len(titles) == 2


def test_a_model_that_cannot_load_means_keyword_only(tmp_path: Path, models_dir: Path) -> None:
    e = engine_at(tmp_path, models_dir, embed_model="no-such-model")
    add(e, *corpus(8))
    result = e.search("heart attack", mode="hybrid")
    assert result.mode == "keyword" and result.hits
    assert "unavailable" in (result.notice or "") and "no-such-model" in (result.notice or "")
    report = e.embed()
    assert report.embedded == 0 and report.error and report.remaining == 8
    assert [h.matched_by for h in e.similar("2401.00000", limit=2)] == [["keyword"]] * 2
    e.close()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(FeatureUnavailable, match="cannot load the embedding model"):
        MiniLMOnnx(bad)


def test_cli_embed_similar_and_index(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERRADAR_DATA_DIR", str(models_dir))
    db = tmp_path / "cli.db"
    e = make_engine(f"sqlite:///{db}")
    add(e, *corpus(16))
    e.close()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        r = runner.invoke(app, ["--db", str(db), *args], catch_exceptions=False)
        return r.exit_code, r.stdout, r.stderr

    code, out, _ = run("embed", "--limit", "5", "--json")
    assert code == 0 and json.loads(out)["embedded"] == 5
    code, out, _ = run("embed", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["embedded"] == 11 and summary["remaining"] == 0
    code, out, _ = run("similar", "2401.00000", "--limit", "2", "--json")
    assert code == 0 and [h["matched_by"] for h in json.loads(out)] == [["semantic"]] * 2
    code, out, _ = run("search", "cardiac arrest survival", "--mode", "semantic", "--json")
    assert code == 0 and "Myocardial" in json.loads(out)[0]["title"]
    code, out, _ = run("index", "rebuild", "--json")
    assert code == 0 and json.loads(out)["vectors"] == 16
    code, out, _ = run("index", "rebuild", "--what", "all", "--json")
    both = json.loads(out)
    assert code == 0 and both["vectors"] == 16 and both["keyword"]["papers"] == 16
    code, _, err = run("similar", "2401.99999")
    assert code == 2 and err.count("\n") == 1 and "no paper" in err
    monkeypatch.setenv("PAPERRADAR_EMBED_MODEL", "no-such-model")
    code, _, err = run("embed")
    assert code == 2 and "no-such-model" in err


def test_bench_ir_semantic_and_hybrid_modes(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": str(i), "title": t, "text": a} for i, (t, a) in enumerate(TOPICS)]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    queries = [{"_id": "q1", "text": "heart attack deaths"}, {"_id": "q2", "text": "melting ice"}]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t0\t1\nq2\t4\t1\n")
    monkeypatch.setenv("PAPERRADAR_DATA_DIR", str(models_dir))
    code = CliRunner().invoke(
        app, ["bench", "ir", str(folder), "--mode", "semantic", "--json"], catch_exceptions=False
    )
    result = json.loads(code.stdout)
    assert code.exit_code == 0 and result["mode"] == "semantic" and result["queries"] == 2
    assert result["ndcg@10"] == 1.0 and result["embed_seconds"] > 0
    from paperradar.config import load_settings
    from paperradar.engine import bench_ir

    hybrid = bench_ir(folder, mode="hybrid", settings=load_settings(data_dir=models_dir))
    assert hybrid["mode"] == "hybrid" and hybrid["recall@100"] == 1.0


def test_model_calls_and_stored_batches_are_sized_separately(
    tmp_path: Path, models_dir: Path
) -> None:
    e = engine_at(tmp_path, models_dir, embed_batch_size=5, embed_model_batch=3)
    try:
        add(e, *corpus())
        model = e.embedder()
        assert model is not None and getattr(model, "batch_size", None) == 3
        seen: list[int] = []
        report = e.embed(limit=7, progress=lambda done, total: seen.append(done))
        # stored in transactions of 5 papers (5, then the 2 left of the limit), whatever the
        # model's own batch
        assert report.embedded == 7 and seen == [0, 5, 7]
    finally:
        e.close()


def test_hybrid_halves_run_side_by_side_and_agree_with_each_mode(eng: Engine) -> None:
    """The keyword half of a hybrid search runs on another thread: the fused hits are the same
    as fusing the keyword and semantic results computed one after the other, and an error of
    the vector half is the search's error."""
    from paperradar.search.service import FUSION_DEPTH, rrf, search_papers

    eng.embed()
    text = "heart attack mortality"
    vector_search = eng._vector_search()
    assert vector_search is not None
    hyb = search_papers(eng.storage, text, mode="hybrid", limit=5, vector_search=vector_search)
    kw = search_papers(eng.storage, text, mode="keyword", limit=FUSION_DEPTH)
    sem = search_papers(
        eng.storage, text, mode="semantic", limit=FUSION_DEPTH, vector_search=vector_search
    )
    pks = eng.storage.pks_for_ids([h.paper.id for h in kw.hits + sem.hits])
    expected = rrf(
        [[pks[h.paper.id] for h in kw.hits], [pks[h.paper.id] for h in sem.hits]],
        [[h.score for h in kw.hits], [h.score for h in sem.hits]],
    )[:5]
    assert [pks[h.paper.id] for h in hyb.hits] == [pk for pk, _ in expected]

    def broken(text: str, flt: object, k: int) -> list[tuple[int, float]]:
        raise RuntimeError("the vector index went away")

    with pytest.raises(RuntimeError, match="went away"):
        search_papers(eng.storage, text, mode="hybrid", vector_search=broken)  # type: ignore[arg-type]


def test_partial_embeddings_are_noticed_and_the_count_follows_new_papers(eng: Engine) -> None:
    """Until every paper has a vector, semantic/hybrid results say how far embedding got. The
    papers are recounted at most every 10 s, off the search's path (a count of a million rows
    takes a tenth of a second): the search after the recount has the new figure."""
    eng.embed(limit=10)
    assert eng.search("heart attack", mode="hybrid").notice == (
        "embeddings cover 10 of 24 papers so far: semantic matches among the rest will appear "
        "once `paperradar embed` has run"
    )
    eng.embed()
    assert eng.search("heart attack", mode="hybrid").notice is None
    add(eng, paper(["2402.00001"], "Cardiac arrest outcomes", abstract="Survival after arrest."))
    assert eng.search("heart attack", mode="hybrid").notice is None  # counted < 10 s ago
    eng._papers_counted = 0.0  # ten seconds later
    eng.search("heart attack", mode="hybrid")  # starts the recount (and does not wait for it)
    recount = eng._recount
    if recount is not None:
        recount.join()
    assert "cover 24 of 25 papers" in (eng.search("heart attack", mode="hybrid").notice or "")

"""Semantic search through the engine on both backends: SQLite (exact / faiss IVF file) and
PostgreSQL (pgvector), with the real bundled model."""

from __future__ import annotations

from pathlib import Path

from helpers_engine import add, paper
from paperradar.config import load_settings
from paperradar.engine import Engine
from paperradar.storage import open_storage

DOCS = [
    (
        "Myocardial infarction outcomes after reperfusion",
        "Heart attack patients treated early lived longer.",
        "q-bio.TO",
    ),
    (
        "Register allocation by graph colouring",
        "Compilers assign processor registers to variables.",
        "cs.PL",
    ),
    (
        "Glacier retreat in a warming climate",
        "Mountain ice shrinks as temperatures rise.",
        "physics.ao-ph",
    ),
    (
        "Cardiac arrest survival in hospitals",
        "Resuscitation of the heart after it stops beating.",
        "q-bio.TO",
    ),
]


def test_semantic_search_and_similar_on_each_backend(storage_url: str, models_dir: Path) -> None:
    eng = Engine(load_settings(data_dir=models_dir), open_storage(storage_url))
    try:
        add(
            eng,
            *[
                paper([f"2403.{i:05d}"], t, abstract=a, categories=[c])
                for i, (t, a, c) in enumerate(DOCS)
            ],
        )
        assert eng.search("heart disease", mode="semantic").mode == "keyword"  # no vectors yet
        report = eng.embed()
        assert report.embedded == 4 and report.remaining == 0
        assert eng.embed().embedded == 0
        info = eng.index_info()
        assert info is not None
        assert info.kind == ("pgvector" if storage_url.startswith("postgresql") else "exact")
        hits = eng.search("heart disease", mode="semantic", limit=2).hits
        assert {h.paper.id for h in hits} == {"2403.00000", "2403.00003"}
        only = eng.search("heart disease cat:cs.PL", mode="semantic", limit=5).hits
        assert [h.paper.id for h in only] == ["2403.00001"]
        assert eng.similar("2403.00000", limit=1)[0].paper.id == "2403.00003"
        pks = list(eng.storage.pks_for_ids(["2403.00000", "2403.00002"]).values())
        stored = eng.storage.embeddings_for(report.model, [*pks, 10**9])
        assert sorted(stored) == sorted(pks) and all(len(v) == 384 * 4 for v in stored.values())
    finally:
        eng.close()

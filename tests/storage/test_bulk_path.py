"""SQLite's bulk write path (driver connection, multi-row VALUES, JSON id lists) gives the same
database as the SQLAlchemy Core path every dialect can take: the fixtures of every source, merges
by DOI and title, updates with new versions, deletions of title-keyed rows and a re-ingest are
run both ways, and every table — the keyword index's own tables included — is compared."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from helpers_engine import new_engine
from paperradar.engine import Engine
from paperradar.harvest import file_plan, snapshot_plan
from paperradar.model import title_key
from paperradar.storage import PaperFilter
from paperradar.storage.sql import SqlStorage

VOLATILE = {"first_seen", "last_seen", "last_run"}  # wall-clock times differ between runs

FILE_SOURCES: list[tuple[str, str]] = [
    ("arxiv_api", "arxiv_api/extracted_2026/*.xml"),
    ("arxiv_api", "arxiv_api/legacy_2016/*.xml"),
    ("arxiv_oai", "arxiv_oai/hepcrawl/*.xml"),
    ("arxiv_oai", "arxiv_oai/arXivOAIHarvester/ListRecordsResponse.xml"),
    ("arxiv_rss", "arxiv_rss/*.xml"),
    ("hf_daily", "hf_daily_papers/daily_papers_*.json"),
    ("bibtex", "zotero_bibtex/*.bib*"),
]


def _dump(db: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with sqlite3.connect(db) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE "
                "'CREATE VIRTUAL TABLE%' ORDER BY name"
            )
        ]
        for table in tables:
            cur = con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            rows = [
                tuple(v for k, v in zip(names, row, strict=True) if k not in VOLATILE)
                for row in cur.fetchall()
            ]
            out[table] = sorted(rows, key=repr)
    return out


def _updated_export(engine: Engine, path: Path) -> None:
    """The store's own export with every third paper changed: a longer abstract and a new
    version (updates and version rows), plus a DOI-only twin of an arXiv paper."""
    lines = []
    for i, line in enumerate(engine.export("jsonl")):
        obj = json.loads(line)
        if i % 3 == 0:
            obj["abstract"] = (obj.get("abstract") or "") + " Revised with more detail."
            versions = obj.get("versions") or []
            top = max((v["version"] for v in versions), default=0)
            obj["versions"] = [*versions, {"version": top + 1, "date": "2026-01-02T03:04:05Z"}]
        lines.append(json.dumps(obj))
    lines.append(json.dumps({"doi": "10.1000/bulk-twin", "title": "A paper known by DOI only"}))
    lines.append(json.dumps({"title": "A paper known by DOI only", "abstract": "From a listing."}))
    lines.append("not json at all")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _scenario(engine: Engine, fixtures: Path, shared: Path, tmp: Path) -> None:
    engine.ingest_pages(sorted((shared / "seeds").glob("*.txt")))
    for source, pattern in FILE_SOURCES:
        for path in sorted(fixtures.glob(pattern)):
            engine.harvest(file_plan(source, path))
    snapshot = fixtures / "kaggle_arxiv_snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"
    engine.harvest(snapshot_plan(snapshot))
    export = tmp / "export.jsonl"
    export.write_text("".join(engine.export("jsonl")), encoding="utf-8")
    engine.ingest_jsonl(export)  # unchanged: nothing written
    changed = tmp / "changed.jsonl"
    _updated_export(engine, changed)
    engine.ingest_jsonl(changed)
    engine.ingest_jsonl(changed)  # idempotent
    # a title-keyed row, then its arXiv id: the title row is folded in (deleted)
    titled, known = tmp / "titled.jsonl", tmp / "known.jsonl"
    titled.write_text(json.dumps({"title": "Bulk path title only", "abstract": "A."}) + "\n")
    known.write_text(json.dumps({"arxiv_id": "2401.00001", "title": "Bulk path title only"}) + "\n")
    engine.ingest_jsonl(titled)
    engine.ingest_jsonl(known)
    assert engine.storage.get_paper(title_key("Bulk path title only")) is None
    assert engine.storage.get_paper("2401.00001") is not None


def test_bulk_and_core_paths_give_the_same_database(
    tmp_path: Path, fixtures_dir: Path, shared_dir: Path
) -> None:
    dumps = {}
    for mode in (True, False):
        folder = tmp_path / f"bulk-{mode}"
        folder.mkdir()
        engine = new_engine(folder)
        assert isinstance(engine.storage, SqlStorage)
        engine.storage.bulk_sqlite = mode
        with engine:
            _scenario(engine, fixtures_dir, shared_dir, folder)
        dumps[mode] = _dump(folder / "test.db")
    assert dumps[True]["papers"], "the scenario stored nothing"
    assert len(dumps[True]["paper_versions"]) > 100
    assert dumps[True] == dumps[False]


def test_bulk_and_core_reads_give_the_same_papers(
    tmp_path: Path, fixtures_dir: Path, shared_dir: Path
) -> None:
    """The driver read of search and paper pages (one statement, versions as JSON) builds the
    same papers as SQLAlchemy Core: every column, versions in order, authors' affiliations."""
    engine = new_engine(tmp_path)
    assert isinstance(engine.storage, SqlStorage)
    storage = engine.storage
    with engine:
        _scenario(engine, fixtures_dir, shared_dir, tmp_path)
        ids = [p.id for p in storage.iter_papers()]
        pks = list(storage.pks_for_ids(ids).values())
        reads = {}
        for mode in (True, False):
            storage.bulk_sqlite = mode
            reads[mode] = (
                storage.get_papers([*ids, "no-such-id"]),
                storage.papers_by_pk(pks),
                storage.list_papers(PaperFilter(), limit=len(ids) + 1),
                storage.list_papers(PaperFilter(), sort="upvotes", limit=7),
            )
    papers, by_pk, listed, _ = reads[True]
    assert len(papers) == len(ids) == len(by_pk) == len(listed)
    assert sum(len(p.versions) > 1 for p in papers) > 10
    assert any(a.affiliations for p in papers for a in p.authors)
    assert reads[True] == reads[False]

"""A harvest killed with SIGKILL at any point and then re-run ends with exactly the database of an
uninterrupted run: no loss, no duplicates. Real ``paperradar`` processes, real SQLite files, a
real local HTTP server; the kill is ``kill -9`` (no handler, no cleanup can run)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sources.replay_server import ReplayServer, Reply

VOLATILE = {"first_seen", "last_seen", "last_run"}  # wall-clock times differ between runs


def _cli(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "paperradar", "--db", str(db), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err + out[:2000]
    assert json.loads(out)["rejected"] == 0


def _dump(db: Path) -> dict[str, Any]:
    """Every row that matters, without the wall-clock columns; plus what a search returns."""
    with sqlite3.connect(db) as con:
        out: dict[str, Any] = {}
        for table, order in (
            ("papers", "id"),
            ("paper_versions", "paper_pk, version"),
            ("source_state", "source"),
        ):
            cur = con.execute(f"SELECT * FROM {table} ORDER BY {order}")
            names = [d[0] for d in cur.description]
            out[table] = [
                {k: v for k, v in zip(names, row, strict=True) if k not in VOLATILE}
                for row in cur.fetchall()
            ]
        out["count"] = con.execute("SELECT count(*) FROM papers").fetchone()[0]
    return out


def _checkpoint(db: Path, source: str) -> dict[str, Any] | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=0.2) as con:
            row = con.execute(
                "SELECT checkpoint FROM source_state WHERE source = ?", (source,)
            ).fetchone()
    except sqlite3.OperationalError:  # not migrated yet / locked for a moment
        return None
    return json.loads(row[0]) if row else None


def _wait_for(predicate: Any, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


# -- OAI-PMH: killed while waiting for the page after a resumption token --------------------------


def _oai_server(srv: ReplayServer, fixtures_dir: Path, *, slow_second_page: bool) -> None:
    oai = fixtures_dir / "arxiv_oai"
    first = Reply.file(oai / "arXivOAIHarvester" / "ListRecordsResponse.xml")
    last = Reply.file(oai / "extracted" / "listrecords_arXiv_503_then_200__1_status200.xml")
    srv.route("/oai", first, metadataPrefix="arXivRaw")
    hang = Reply(last.status, last.body, delay_s=20.0)
    srv.route("/oai", [hang, last] if slow_second_page else last, resumptionToken="726959|1001")


def _oai_env(srv: ReplayServer) -> dict[str, str]:
    return {"PAPERRADAR_OAI_URL": srv.url("/oai"), "PAPERRADAR_REQUEST_DELAY_S": "0"}


OAI_ARGS = ("ingest", "oai", "--set", "physics", "--from", "2014-10-01", "--prefix", "arXivRaw")


def test_oai_harvest_killed_between_pages_resumes_to_the_same_database(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    with ReplayServer() as srv:
        _oai_server(srv, fixtures_dir, slow_second_page=False)
        _finish(_cli(tmp_path / "whole.db", *OAI_ARGS, "--json", env=_oai_env(srv)))
    whole = _dump(tmp_path / "whole.db")
    assert whole["count"] > 2

    with ReplayServer() as srv:
        _oai_server(srv, fixtures_dir, slow_second_page=True)
        db = tmp_path / "killed.db"
        proc = _cli(db, *OAI_ARGS, "--json", env=_oai_env(srv))
        _wait_for(
            lambda: any("resumptionToken" in r.query for r in srv.requests),
            proc,
            "the request for the second page",
        )
        stored = _checkpoint(db, "arxiv_oai:physics")
        assert stored is not None and stored["resumption_token"] == "726959|1001"
        _kill9(proc)
        partial = _dump(db)
        assert 0 < partial["count"] < whole["count"]
        _finish(_cli(db, *OAI_ARGS, "--json", env=_oai_env(srv)))  # the same command again
        tokens = [r.query.get("resumptionToken") for r in srv.requests]
        assert tokens == [None, ["726959|1001"], ["726959|1001"]]  # resumed, not restarted
    assert _dump(db) == whole


# -- bulk snapshot: killed in the middle of storing a batch ---------------------------------------


def _synthetic_snapshot(fixtures_dir: Path, path: Path, copies: int) -> int:
    """The fixture's 200 real lines, repeated with fresh ids, DOIs and titles per copy."""
    src = fixtures_dir / "kaggle_arxiv_snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for c in range(copies):
            for i, row in enumerate(rows):
                n += 1
                new = dict(row)
                new["id"] = f"{15 + c // 12:02d}{c % 12 + 1:02d}.{i + 1:05d}"
                new["title"] = f"{row['title']} ({c})"
                if row.get("doi"):
                    new["doi"] = f"10.5555/copy.{c}.{i}"
                fh.write(json.dumps(new) + "\n")
    return n


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("snap") / "arxiv-metadata-oai-snapshot.json"
    assert _synthetic_snapshot(fixtures_dir, path, copies=60) == 12_000
    return path


def test_snapshot_ingest_killed_mid_batch_resumes_to_the_same_database(
    tmp_path: Path, snapshot_file: Path
) -> None:
    state_key = f"arxiv_snapshot:{snapshot_file.name}"
    _finish(_cli(tmp_path / "whole.db", "ingest", "snapshot", str(snapshot_file), "--json"))
    whole = _dump(tmp_path / "whole.db")
    assert whole["count"] == 12_000

    db = tmp_path / "killed.db"
    proc = _cli(db, "ingest", "snapshot", str(snapshot_file), "--json")
    # the first batch is committed; the process is now parsing/writing the second one
    _wait_for(lambda: (_checkpoint(db, state_key) or {}).get("line"), proc, "a stored batch")
    _kill9(proc)
    cp = _checkpoint(db, state_key)
    assert cp is not None and 0 < cp["line"] < 12_000
    assert _dump(db)["count"] == cp["line"]  # exactly the committed batches, nothing half-written
    _finish(_cli(db, "ingest", "snapshot", str(snapshot_file), "--json"))
    assert _dump(db) == whole
    # and running it once more changes nothing
    _finish(_cli(db, "ingest", "snapshot", str(snapshot_file), "--json"))
    assert _dump(db) == whole

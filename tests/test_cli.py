"""The CLI contract: commands, --json shapes and exit codes that users script against."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paperradar.cli import app

runner = CliRunner()


def run(db: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", str(db), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    db = tmp_path_factory.mktemp("cli") / "p.db"
    seeds = sorted(str(p) for p in (shared_dir / "seeds").iterdir())
    code, out, _ = run(db, "ingest", "pages", *seeds, "--json")
    assert code == 0
    assert json.loads(out)["new"] == 397
    return db


def test_stats_json(seeded: Path) -> None:
    code, out, _ = run(seeded, "stats", "--json")
    assert code == 0
    assert json.loads(out)["papers"] == 397


def test_search_json_hits_have_id_title_score(seeded: Path) -> None:
    code, out, _ = run(
        seeded, "search", "mean field langevin", "--limit", "5", "--json", "--mode", "keyword"
    )
    assert code == 0
    hits = json.loads(out)
    assert 1 <= len(hits) <= 5
    assert all({"id", "title", "score"} <= h.keys() for h in hits)
    assert "langevin" in hits[0]["title"].lower()
    assert hits == sorted(hits, key=lambda h: -h["score"])


def test_show_json_by_id(seeded: Path) -> None:
    _, out, _ = run(seeded, "search", "grokking", "--json", "--mode", "keyword")
    pid = json.loads(out)[0]["id"]
    code, out, _ = run(seeded, "show", pid, "--json")
    assert code == 0
    assert json.loads(out)["title"].startswith("Grokking")


def test_unknown_paper_is_an_error_not_a_traceback(seeded: Path) -> None:
    code, _, err = run(seeded, "show", "2401.99999")
    assert code == 2 and "no paper" in err and "Traceback" not in err


def test_malformed_query_names_the_problem(seeded: Path) -> None:
    code, _, err = run(seeded, "search", 'title:"unclosed')
    assert code == 2
    assert "position" in err and "quote" in err


def test_export_jsonl_round_trips_into_a_new_database(seeded: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "all.jsonl"
    assert run(seeded, "export", "--format", "jsonl", "-o", str(out_file))[0] == 0
    assert len(out_file.read_text().splitlines()) == 397
    code, out, _ = run(tmp_path / "copy.db", "ingest", "jsonl", str(out_file), "--json")
    assert code == 0 and json.loads(out)["new"] == 397
    code, out, _ = run(tmp_path / "copy.db", "ingest", "jsonl", str(out_file), "--json")
    assert json.loads(out)["unchanged"] == 397


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("csv", "id,arxiv_id"),
        ("bibtex", "@article{"),
        ("ris", "TY  - "),
        ("csl-json", '"type": "article"'),
    ],
)
def test_export_formats(seeded: Path, fmt: str, marker: str) -> None:
    code, out, _ = run(seeded, "export", "--format", fmt)
    assert code == 0 and marker in out


def test_bad_jsonl_lines_are_rejected_by_line_and_the_rest_kept(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    good = json.dumps({"title": "A Good Paper", "abstract": "Fine.", "arxiv_id": "2401.00001"})
    f.write_text(
        good
        + "\n{not json\n"
        + json.dumps({"abstract": "no title"})
        + "\n"
        + json.dumps({"title": "Another", "doi": "10.1/x"})
        + "\n"
    )
    code, _out, err = run(tmp_path / "x.db", "ingest", "jsonl", str(f))
    assert code == 1
    assert "in.jsonl:2" in err and "not JSON" in err
    assert "in.jsonl:3" in err and "title" in err
    assert run(tmp_path / "x.db", "stats", "--json")[1].count('"papers": 2') == 1


def test_bad_page_files_exit_nonzero_and_keep_good_ones(tmp_path: Path, shared_dir: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(bytes(range(256)))
    seed = shared_dir / "seeds" / "000_27b085f6df64a769.txt"
    code, _out, err = run(
        tmp_path / "y.db",
        "ingest",
        "pages",
        str(empty),
        str(binary),
        str(seed),
        str(tmp_path / "missing.txt"),
    )
    assert code == 1
    assert "empty.txt" in err and "bin.txt" in err and "missing.txt" in err
    assert json.loads(run(tmp_path / "y.db", "stats", "--json")[1])["papers"] > 100


def test_console_script_runs_from_a_fresh_process(tmp_path: Path) -> None:
    env = {**os.environ, "PAPERRADAR_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "paperradar", "stats", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["papers"] == 0
    assert (tmp_path / "env.db").exists()

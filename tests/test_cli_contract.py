"""More of the CLI contract: bad JSON-lines files, the seed corpus read back whole, progress on a
terminal, ``sources``, ``bench ir --json``, ``demo --no-serve`` and base URLs from config."""

from __future__ import annotations

import gzip
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import httpx
import pytest

from paperradar.cli import app
from sources.replay_server import ReplayServer, Reply
from test_cli import run, runner

GOOD = [
    {"title": f"Paper number {i}", "abstract": "An abstract.", "arxiv_id": f"2401.0000{i}"}
    for i in range(1, 4)
]


def _jsonl(objs: list[dict[str, str]]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def _papers(db: Path) -> int:
    return int(json.loads(run(db, "stats", "--json")[1])["papers"])


def test_an_empty_jsonl_file_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    f = tmp_path / "empty.jsonl"
    f.write_bytes(b"\n\n")
    code, out, _err = run(tmp_path / "x.db", "ingest", "jsonl", str(f), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["rejected"] == 1
    assert "empty.jsonl" in report["problems"][0] and "empty" in report["problems"][0]


def test_a_binary_jsonl_file_is_one_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "data.jsonl"
    f.write_bytes(_jsonl(GOOD[:1]) + bytes(range(256)) * 20)
    code, _out, err = run(tmp_path / "x.db", "ingest", "jsonl", str(f))
    assert code == 1
    assert err.count("rejected:") == 1 and "data.jsonl:2" in err and "binary" in err
    assert _papers(tmp_path / "x.db") == 1


def test_a_truncated_jsonl_file_keeps_the_whole_lines(tmp_path: Path) -> None:
    f = tmp_path / "cut.jsonl"
    data = _jsonl(GOOD)
    f.write_bytes(data[:-20])  # the third line loses its end
    code, _out, err = run(tmp_path / "x.db", "ingest", "jsonl", str(f))
    assert code == 1 and "cut.jsonl:3" in err and "not JSON" in err
    assert _papers(tmp_path / "x.db") == 2
    # the whole file afterwards adds exactly the missing paper
    f.write_bytes(data)
    assert run(tmp_path / "x.db", "ingest", "jsonl", str(f))[0] == 0
    assert _papers(tmp_path / "x.db") == 3


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path: Path) -> None:
    f = tmp_path / "cut.jsonl.gz"
    many = [{"title": f"T {i}", "arxiv_id": f"2402.{i:05d}"} for i in range(3000)]
    whole = gzip.compress(_jsonl(many))
    f.write_bytes(whole[: len(whole) // 2])
    code, _out, err = run(tmp_path / "x.db", "ingest", "jsonl", str(f))
    assert code == 1 and "cut.jsonl.gz" in err
    kept = _papers(tmp_path / "x.db")
    assert 0 < kept < 3000


def test_non_utf8_jsonl_line_is_named_and_the_rest_kept(tmp_path: Path) -> None:
    f = tmp_path / "latin.jsonl"
    f.write_bytes(
        _jsonl(GOOD[:1]) + '{"title": "Caf\u00e9"}\n'.encode("latin-1") + _jsonl(GOOD[1:])
    )
    code, _out, err = run(tmp_path / "x.db", "ingest", "jsonl", str(f))
    assert code == 1 and "latin.jsonl:2" in err and "UTF-8" in err
    assert _papers(tmp_path / "x.db") == 3


def _seed_pairs(shared_dir: Path) -> dict[str, str]:
    """An independent reading of the seed pages: after the page chrome, the non-blank lines
    alternate title, abstract (the first title may be glued to "Subscribe")."""
    chrome = {"new", "Subscribe", "byAK and the research community", "Mar 18"}
    pairs: dict[str, str] = {}
    n = 0
    for f in sorted((shared_dir / "seeds").iterdir()):
        lines = [x.strip() for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        lines = [x for x in lines if x not in chrome and not x.startswith("Get trending papers")]
        lines = [x.removeprefix("Subscribe") for x in lines]
        assert len(lines) % 2 == 0
        for title, abstract in zip(lines[::2], lines[1::2], strict=True):
            n += 1
            assert pairs.setdefault(title, abstract) == abstract
    assert n == 439
    return pairs


def test_every_seed_paper_comes_out_with_its_full_title_and_abstract(
    tmp_path: Path, shared_dir: Path
) -> None:
    expected = _seed_pairs(shared_dir)
    assert len(expected) == 397
    db = tmp_path / "seed.db"
    seeds = sorted(str(p) for p in (shared_dir / "seeds").iterdir())
    code, out, _ = run(db, "ingest", "pages", *seeds, "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["read"], report["new"], report["rejected"]) == (439, 397, 0)
    with sqlite3.connect(db) as con:
        stored = dict(con.execute("SELECT title, abstract FROM papers").fetchall())
    nfc = {
        unicodedata.normalize("NFC", t): unicodedata.normalize("NFC", a)
        for t, a in expected.items()
    }
    assert stored == nfc
    again = json.loads(run(db, "ingest", "pages", *seeds, "--json")[1])
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 439)


# The pseudo-terminal runs are driven from a fresh interpreter: pexpect forks and runs Python in
# the child before exec, which is not safe in a process with threads running (this one has the
# threads of the in-process CLI tests), and a child that dies there shows only an empty EOF.
_ON_TERMINAL = """
import json, sys, pexpect
args, cwd, env, patterns = json.loads(sys.argv[1])
child = pexpect.spawn(sys.executable, ["-m", "paperradar", *args], env=env, cwd=cwd, timeout=60,
                      encoding="utf-8", dimensions=(24, 100))
matched = []
for pattern in patterns:
    try:
        child.expect(pattern)
        matched.append(True)
    except (pexpect.EOF, pexpect.TIMEOUT):
        matched.append(False)
        break
child.expect(pexpect.EOF)
child.close()
print(json.dumps({"matched": matched, "exitstatus": child.exitstatus,
                  "signalstatus": child.signalstatus, "tail": (child.before or "")[-2000:]}))
"""


def _on_terminal(
    tmp_path: Path, args: list[str], patterns: list[str], env: dict[str, str] | None = None
) -> dict[str, object]:
    """``paperradar ARGS`` on a pseudo-terminal (100 columns): which of ``patterns`` its output
    showed, in order, and how it exited."""
    if env is None:
        env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
        env.pop("NO_COLOR", None)
    job = json.dumps([args, str(tmp_path), env, patterns])
    done = subprocess.run(
        [sys.executable, "-c", _ON_TERMINAL, job], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_ingest_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    f = tmp_path / "many.jsonl"
    f.write_bytes(_jsonl([{"title": f"T {i}", "arxiv_id": f"2403.{i:05d}"} for i in range(30000)]))
    got = _on_terminal(
        tmp_path,
        ["--db", str(tmp_path / "t.db"), "ingest", "jsonl", str(f)],
        [r"jsonl.*records", r"read 30,000\s+new 30,000"],  # the live bar, then the summary
    )
    assert got["matched"] == [True, True] and got["exitstatus"] == 0, got


def test_without_a_terminal_there_is_no_progress_output(tmp_path: Path) -> None:
    f = tmp_path / "few.jsonl"
    f.write_bytes(_jsonl(GOOD))
    code, out, err = run(tmp_path / "t.db", "ingest", "jsonl", str(f))
    assert code == 0 and err == "" and out.startswith("read 3")


def test_sources_table_and_json_after_runs(tmp_path: Path, fixtures_dir: Path) -> None:
    db = tmp_path / "s.db"
    hf = fixtures_dir / "hf_daily_papers"
    assert run(db, "ingest", "hf-daily", "--file", str(hf / "daily_papers_2025-06-25.json"))[0] == 0
    code, _out, err = run(
        db, "ingest", "hf-daily", "--file", str(hf / "BROKEN_archiver_stringified_2024-12-17.json")
    )
    assert code == 1 and "BROKEN_archiver" in err
    code, out, _ = run(db, "sources", "--json")
    assert code == 0
    (row,) = [r for r in json.loads(out) if r["source"] == "hf_daily:file"]
    assert row["seen"] > 0 and row["new"] > 0 and row["rejected"] == 1 and row["last_run"]
    code, out, _ = run(db, "sources")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:3] == ["source", "last", "run"] and "watermark" in header
    assert "hf_daily:file" in out


def _tiny_beir(folder: Path) -> Path:
    folder.mkdir()
    docs = {
        "d1": ("Protein folding", "Alpha helices and beta sheets fold proteins."),
        "d2": ("Graph networks", "Message passing over graphs for molecules."),
        "d3": ("Diffusion images", "Denoising diffusion generates images."),
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": a}) + "\n" for k, (t, a) in docs.items())
    )
    queries = {"q1": "protein folding helices", "q2": "diffusion images", "q3": "graphs"}
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (folder / "qrels").mkdir()
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td2\t1\n"
    )
    return folder


def test_bench_ir_json_shape_and_modes(tmp_path: Path) -> None:
    folder = _tiny_beir(tmp_path / "beir")
    code, out, _ = run(
        tmp_path / "unused.db",
        "bench",
        "ir",
        str(folder),
        "--split",
        "train",
        "--mode",
        "keyword",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert {"ndcg@10", "recall@100", "mrr@10", "qps", "queries"} <= set(result)
    assert result["queries"] == 3 and result["ndcg@10"] == pytest.approx(1.0)
    assert result["mrr@10"] == pytest.approx(1.0) and result["recall@100"] == pytest.approx(1.0)
    code, _out, err = run(tmp_path / "unused.db", "bench", "ir", str(folder), "--split", "test")
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    code, _out, err = run(tmp_path / "unused.db", "bench", "ir", str(folder), "--mode", "fuzzy")
    assert code == 2 and "fuzzy" in err


def test_bench_ir_into_a_given_store_and_never_into_a_full_one(tmp_path: Path) -> None:
    folder = _tiny_beir(tmp_path / "beir")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    args = ("bench", "ir", str(folder), "--split", "train", "--store", store, "--json")
    code, out, _ = run(tmp_path / "unused.db", *args)
    assert code == 0 and json.loads(out)["ndcg@10"] == pytest.approx(1.0)
    assert _papers(tmp_path / "store.db") == 3  # loaded there, kept
    code, _out, err = run(tmp_path / "unused.db", *args)
    assert code == 2 and "holds papers" in err and "Traceback" not in err


def test_demo_without_serving_ingests_the_bundled_corpus_once(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    code, out, _ = run(db, "demo", "--no-serve", "--no-embed")
    assert code == 0 and "397 new" in out
    code, out, _ = run(db, "demo", "--no-serve", "--no-embed")
    assert code == 0 and "0 new" in out and _papers(db) == 397


def test_demo_default_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(tmp_path / "data")}
    env.pop("PAPERRADAR_DATABASE_URL", None)
    got = _on_terminal(tmp_path, ["demo", "--port", "0", "--no-serve", "--no-embed"], [], env)
    assert got["exitstatus"] == 0, got
    assert (tmp_path / "data" / "paperradar.db").is_file()


def test_arxiv_base_url_comes_from_the_environment(tmp_path: Path, fixtures_dir: Path) -> None:
    page = next((fixtures_dir / "arxiv_api" / "extracted_2026").glob("id_1605.08386*.xml"))
    with ReplayServer() as srv:
        srv.route("/mirror/api/query", Reply.file(page))
        env = {
            **os.environ,
            "PAPERRADAR_ARXIV_API_URL": srv.url("/mirror/api/query"),
            "PAPERRADAR_REQUEST_DELAY_S": "0",
            "PAPERRADAR_CONTACT_EMAIL": "ops@example.org",
        }

        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "paperradar",
                "--db",
                str(tmp_path / "a.db"),
                "ingest",
                "arxiv",
                "--ids",
                "1605.08386",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["new"] == 1
        (seen,) = srv.requests
        assert seen.path == "/mirror/api/query" and seen.query["id_list"] == ["1605.08386"]
        assert "ops@example.org" in seen.headers["User-Agent"]


def test_snapshot_ingest_shows_a_byte_progress_bar_on_a_terminal(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    head = fixtures_dir / "kaggle_arxiv_snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"
    snap = tmp_path / "snapshot.json.gz"
    snap.write_bytes(gzip.compress(head.read_bytes()))
    got = _on_terminal(
        tmp_path,
        ["--db", str(tmp_path / "s.db"), "ingest", "snapshot", str(snap)],
        [r"snapshot.*kB.*records", r"read 200\s+new 200"],  # bytes of the file, then the summary
    )
    assert got["matched"] == [True, True] and got["exitstatus"] == 0, got


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_creates_ingests_and_serves_the_printed_url(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(tmp_path / "data")}
    env.pop("PAPERRADAR_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperradar", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert proc.stderr is not None
        # "paperradar is serving on http://…", after any warnings (a first load of an int8
        # model says that it quantizes it, once)
        lines = [proc.stderr.readline() for _ in range(1)]
        while url not in lines[-1] and lines[-1] and len(lines) < 50:
            lines.append(proc.stderr.readline())
        assert url in lines[-1], lines
        home = api = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and home is None:
            try:
                home = httpx.get(url + "/", timeout=5)
                api = httpx.get(url + "/api/v1/stats", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        assert home is not None and api is not None
        assert home.status_code == 200 and home.text.count('class="card"') >= 10
        assert api.json()["papers"] == 397
        # the demo embeds its corpus, so the page's search box searches by meaning too
        assert api.json()["embeddings"] == 397
        found = httpx.get(url + "/api/v1/search", params={"q": "making language models smaller"})
        assert found.status_code == 200 and found.json()["mode"] == "hybrid"
        # a second demo on the same port says why it cannot start, in one line
        again = subprocess.run(
            [sys.executable, "-m", "paperradar", "demo", "--port", str(port), "--no-embed"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 2
        assert "already in use" in again.stderr and "Traceback" not in again.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert (tmp_path / "data" / "paperradar.db").is_file()


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("not-a-db.bin", "file is not a database"),
        ("postgresql://reader:s3cret@127.0.0.1:1/papers", "reader:***@127.0.0.1:1/papers"),
    ],
)
def test_an_unusable_database_is_one_line_without_the_password(
    tmp_path: Path, db: str, expected: str
) -> None:
    if "://" not in db:
        (tmp_path / db).write_bytes(bytes(range(256)) * 8)
        db = str(tmp_path / db)
    result = runner.invoke(app, ["--db", db, "stats", "--json"], catch_exceptions=False)
    code, err = result.exit_code, result.stderr
    assert code == 2
    assert err.startswith("error: cannot open or migrate the database") and expected in err
    assert err.count("\n") == 1 and "s3cret" not in err and "sqlalche.me" not in err


def test_next_weeks_snapshot_under_the_same_name_is_ingested_not_skipped(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    lines = (
        (fixtures_dir / "kaggle_arxiv_snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl")
        .read_bytes()
        .splitlines(keepends=True)
    )
    snap, db = tmp_path / "arxiv-metadata-oai-snapshot.json", tmp_path / "s.db"
    snap.write_bytes(b"".join(lines[:120]))
    assert json.loads(run(db, "ingest", "snapshot", str(snap), "--json")[1])["new"] == 120
    again = json.loads(run(db, "ingest", "snapshot", str(snap), "--json")[1])
    assert again["read"] == 0  # the same file: already done, resumes at its end
    snap.write_bytes(b"".join(lines))  # the new download: 80 more papers
    os.utime(snap, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    newer = json.loads(run(db, "ingest", "snapshot", str(snap), "--json")[1])
    assert (newer["read"], newer["new"], newer["unchanged"]) == (200, 80, 120)
    assert _papers(db) == 200

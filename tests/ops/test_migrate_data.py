"""``paperradar migrate-data``: SQLite → PostgreSQL and back, everything copied (papers with
versions, source states, vectors), a copy killed with SIGKILL resumes and ends identical, and the
end is verified by counts and checksums on both sides."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from paperradar.engine import Engine, make_engine
from paperradar.model import Author, Paper, Version
from paperradar.sources import records_to_batches
from paperradar.storage.sql import content_hash
from paperradar.transfer import checkpoint_key, copy_collection, verify_collection

from .conftest import child_env

N = 1500
MODEL = "test-model"


def make_source(path: Path) -> str:
    """A SQLite collection: N papers (versions, authors, counts), two source states, vectors."""
    url = f"sqlite:///{path}"
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    papers = [
        Paper(
            id=f"2401.{i:05d}",
            arxiv_id=f"2401.{i:05d}",
            version=1 + i % 3,
            title=f"Study {i} of sparse operators and élan vital",
            abstract=f"We measure effect {i} with care. " * (1 + i % 4),
            authors=[Author(f"Author {i % 97}", ["Lab Ω"] if i % 5 == 0 else [])],
            categories=["cs.LG", "stat.ML"] if i % 2 else ["math.OC"],
            primary_category="cs.LG" if i % 2 else "math.OC",
            published=t0 + timedelta(hours=i),
            upvotes=i % 11 or None,
            versions=[Version(v, t0 + timedelta(days=v), f"{v}kb") for v in range(1, 2 + i % 3)],
            extra={"comment": f"{i % 13} pages"},
        )
        for i in range(N)
    ]
    with make_engine(url) as eng:
        half = N // 2
        eng.ingest(records_to_batches("arxiv_oai", iter(papers[:half])), state_key="arxiv_oai:cs")
        eng.ingest(records_to_batches("hf_daily", iter(papers[half:])), state_key="hf_daily")
        eng.storage.record_source_error("hf_daily", "HTTP 503 from huggingface.co (test)")
        pks = eng.storage.pks_for_ids([p.id for p in papers])
        rng = np.random.default_rng(3)
        vecs = rng.standard_normal((N, 16)).astype("<f4")
        eng.storage.write_embeddings(
            MODEL,
            [
                (pks[p.id], content_hash(p.title, p.abstract), vecs[i].tobytes())
                for i, p in enumerate(papers)
                if i % 4  # three quarters have vectors
            ],
        )
    return url


@pytest.fixture(scope="module")
def source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrate") / "template.db"
    make_source(path)
    return path


@pytest.fixture
def src_url(source_template: Path, tmp_path: Path) -> str:
    shutil.copy(source_template, tmp_path / "src.db")
    return f"sqlite:///{tmp_path / 'src.db'}"


def all_ok(src: Engine, dst: Engine) -> list[Any]:
    rows = verify_collection(src.storage, dst.storage)
    assert [r.what for r in rows] == ["papers", "versions", f"vectors {MODEL}", "source states"]
    assert all(r.ok for r in rows), rows
    return rows


def test_a_killed_copy_resumes_and_ends_identical(
    src_url: str, tmp_path: Path, pg_url: str, spawn: Any
) -> None:
    env = child_env(tmp_path)
    args = ["migrate-data", src_url, pg_url, "--batch-size", "100", "--json"]
    first = spawn(args, env, tmp_path / "first.log")
    with make_engine(pg_url) as dst, make_engine(src_url) as src:
        key = checkpoint_key(src.storage)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            state = dst.storage.source_state(key)
            if state and int(state.checkpoint.get("copied", 0)) >= 300:
                break
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        copied_before = dst.stats()["papers"]
        assert 0 < copied_before < N  # really stopped midway

        second = subprocess.run(
            [sys.executable, "-m", "paperradar", *args], env=env, capture_output=True, timeout=120
        )
        assert second.returncode == 0, second.stderr.decode()[-2000:]
        out = json.loads(second.stdout)
        assert out["written"]["papers"] == N - copied_before  # continued, did not restart
        assert all(c["ok"] for c in out["checks"]) and out["checks"][0]["destination"] == N
        rows = all_ok(src, dst)
        assert rows[2].dst_count == N - N // 4
        assert dst.paper("2401.00005") == src.paper("2401.00005")
        assert {s.source: s for s in dst.sources() if s.source != key} == {
            s.source: s for s in src.sources()
        }
        # Searching works on the copy (the tsvector index came with the rows).
        assert [h.paper.id for h in dst.search("Study 42 operators", mode="keyword").hits][:1] == [
            "2401.00042"
        ]

        # And back: PostgreSQL → a new SQLite file, in-process, verified the same way.
        back_url = f"sqlite:///{tmp_path / 'back.db'}"
        with make_engine(back_url) as back:
            copy_collection(dst.storage, back.storage, batch_size=700)
            all_ok(dst, back)
            assert back.paper("2401.01499") == src.paper("2401.01499")

        # Re-running a finished copy writes nothing (and it still verifies, above).
        again = copy_collection(src.storage, dst.storage)
        assert again == {"papers": 0, "vectors": 0, "source_states": 0}


def test_interrupted_between_batches_the_copy_continues_from_its_checkpoint(
    src_url: str, tmp_path: Path
) -> None:

    class Crash(Exception):
        pass

    def crash_after_two_batches(stage: str, done: int, total: int) -> None:
        if stage == "papers" and done >= 2 * 400:
            raise Crash

    with make_engine(src_url) as src, make_engine(str(tmp_path / "dst.db")) as dst:
        with pytest.raises(Crash):
            copy_collection(
                src.storage, dst.storage, progress=crash_after_two_batches, batch_size=400
            )
        assert dst.stats()["papers"] == 800
        written = copy_collection(src.storage, dst.storage, batch_size=400)
        assert written["papers"] == N - 800
        all_ok(src, dst)


def test_a_destination_with_other_papers_is_refused(src_url: str, tmp_path: Path) -> None:
    env = child_env(tmp_path)
    other = tmp_path / "other.db"
    with make_engine(str(other)) as eng:
        eng.ingest(
            records_to_batches("bibtex", iter([Paper(id="10.1/x", title="Mine", doi="10.1/x")]))
        )
    done = subprocess.run(
        [sys.executable, "-m", "paperradar", "migrate-data", src_url, f"sqlite:///{other}"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.startswith("error: the destination") and "copies into an empty database" in err
    assert "Traceback" not in err

"""The job queue and the schedules with real ``paperradar worker`` processes on one database
(a SQLite file, and PostgreSQL): every job done exactly once, none lost when a worker is killed
with SIGKILL midway, schedules fired once however many workers run them."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from helpers_engine import add, paper
from paperradar.engine import make_engine
from paperradar.storage.schema import jobs, papers, schedules
from paperradar.worker import JobContext, Worker
from sources.replay_server import ReplayServer, Reply

from .conftest import child_env

RSS = "arxiv_rss/laya_rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24.xml"
PER_FEED = 4  # items in that feed


def feed_for(job: int, template: bytes) -> bytes:
    """The fixture feed with ids, DOIs and titles of its own: every job brings other papers."""
    text = template.decode()
    ids = sorted(set(re.findall(r"\d{4}\.\d{5}", text)))
    for k, old in enumerate(ids):
        text = text.replace(old, f"2701.{job:03d}{k:02d}")
    text = re.sub(
        r"<arxiv:DOI>[^<]*</arxiv:DOI>", f"<arxiv:DOI>10.5555/job.{job}</arxiv:DOI>", text
    )
    n = iter(range(1000))
    text = re.sub(
        r"(<item>\s*<title>)(.*?)(</title>)",
        lambda m: f"{m[1]}{m[2]} [{job}.{next(n)}]{m[3]}",
        text,
    )
    return text.encode()


def rows(url: str, query: Any) -> list[Any]:
    eng = make_engine(url)
    try:
        with eng.storage.engine.connect() as conn:  # type: ignore[attr-defined]
            return list(conn.execute(query))
    finally:
        eng.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


QUIET = {
    "schedule_rss": "",
    "schedule_oai": "",
    "schedule_hf": "",
    "schedule_embed": "",
    "schedule_digest": "",
}


def test_workers_share_jobs_and_lose_none_when_one_is_killed(
    db_url: str, tmp_path: Path, fixtures_dir: Path, spawn: Any
) -> None:
    template = (fixtures_dir / RSS).read_bytes()
    n_jobs = 18
    with ReplayServer() as server:
        for i in range(n_jobs):
            server.route(f"/rss/cat{i}", Reply(200, feed_for(i, template), delay_s=0.3))
        eng = make_engine(db_url)
        ids = [
            eng.storage.enqueue("harvest", {"source": "rss", "categories": f"cat{i}"})
            for i in range(n_jobs)
        ]
        eng.close()
        env = child_env(
            tmp_path,
            database_url=db_url,
            rss_url=server.url("/rss"),
            request_delay_s="0",
            max_retries="1",
            # Heartbeats renew a third of the way through: 4 s leaves a busy 2-core machine (the
            # whole suite beside it) over 2.5 s of slack before a live worker's lease expires.
            worker_lease_s="4",
            worker_poll_s="0.1",
            **QUIET,
        )
        workers = [
            spawn(["worker", "--id", f"w{k}", "--kinds", "harvest"], env, tmp_path / f"w{k}.log")
            for k in range(3)
        ]

        def w0_holds_a_job() -> bool:
            q = sa.select(jobs.c.id).where(jobs.c.state == "running", jobs.c.locked_by == "w0")
            return bool(rows(db_url, q))

        wait_for(w0_holds_a_job, 30, "worker w0 to hold a job")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)

        def all_done() -> bool:
            q = sa.select(jobs.c.state).where(jobs.c.kind == "harvest")
            return all(r.state == "done" for r in rows(db_url, q))

        wait_for(all_done, 45, "every job to be done")
        for w in workers[1:]:
            w.send_signal(signal.SIGTERM)
        for k, w in enumerate(workers[1:], 1):
            assert w.wait(timeout=15) == 0, (tmp_path / f"w{k}.log").read_text()[-2000:]
        fetched = [r.path for r in server.requests]

    done = {r.id: r for r in rows(db_url, sa.select(jobs).where(jobs.c.kind == "harvest"))}
    assert sorted(done) == sorted(ids)
    retried = [r for r in done.values() if r.attempts > 1]
    assert len(retried) <= 1  # only the killed worker's job ran again
    assert {r.locked_by for r in done.values()} == {None}
    for i, job_id in enumerate(ids):
        expected = 2 if done[job_id] in retried else 1
        assert fetched.count(f"/rss/cat{i}") in ((1, 2) if expected == 2 else (1,)), i
    # Nothing lost, nothing twice: every job's papers are there, once.
    stored = [r.id for r in rows(db_url, sa.select(papers.c.id))]
    assert len(stored) == len(set(stored)) == n_jobs * PER_FEED
    assert {s[:8] for s in stored} == {f"2701.{i:03d}" for i in range(n_jobs)}
    # New papers queued one shared embedding job for the embedder.
    embed = rows(db_url, sa.select(jobs).where(jobs.c.kind == "embed"))
    assert [(r.key, r.state) for r in embed] == [("embed", "queued")]
    # The killed worker really held a job when it died.
    assert "w0" not in {r.locked_by for r in done.values()}
    assert w0_holds_a_job() is False


def test_a_schedule_fires_once_across_workers(
    db_url: str, tmp_path: Path, fixtures_dir: Path, spawn: Any
) -> None:
    day = (fixtures_dir / "hf_daily_papers/daily_papers_2024-05-27.json").read_bytes()
    with ReplayServer() as server:
        server.route("/api/daily_papers", Reply(200, day, {"Content-Type": "application/json"}))
        env = child_env(
            tmp_path,
            database_url=db_url,
            hf_url=server.url("/api/daily_papers"),
            request_delay_s="0",
            **(QUIET | {"schedule_hf": "0 0 1 1 *", "schedule_digest": "* * * * *"}),
        )
        procs = [
            spawn(
                ["worker", "--once", "--id", f"s{k}", "--kinds", "harvest"],
                env,
                tmp_path / f"s{k}.log",
            )
            for k in range(4)
        ]
        for k, p in enumerate(procs):
            assert p.wait(timeout=60) == 0, (tmp_path / f"s{k}.log").read_text()[-2000:]
        pages = [r for r in server.requests if r.path == "/api/daily_papers"]

    fired = rows(db_url, sa.select(jobs).where(jobs.c.key == "schedule:harvest:hf-daily"))
    assert len(fired) == 1 and fired[0].state == "done" and fired[0].attempts == 1
    assert len(pages) == 1  # one harvest of today's page, not one per worker
    sched = {r.name: r for r in rows(db_url, sa.select(schedules))}
    # These workers do not run digests: the digest schedule waits for one that does.
    assert set(sched) == {"harvest:hf-daily"}
    assert sched["harvest:hf-daily"].last_worker in {f"s{k}" for k in range(4)}
    assert (
        sched["harvest:hf-daily"].next_run.month == 1
        and sched["harvest:hf-daily"].next_run.day == 1
    )
    assert rows(db_url, sa.select(jobs.c.kind).where(jobs.c.kind == "digest")) == []


def test_a_job_of_an_unknown_kind_is_failed_with_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with make_engine(url) as eng:
        bogus = eng.storage.enqueue("reticulate", {"splines": 3}, max_attempts=1)
        w = Worker(eng, worker_id="t", kinds=["reticulate", "harvest"], schedules=[])
        report = w.run(once=True)
        assert (report.done, report.failed) == (0, 1)
    (row,) = rows(url, sa.select(jobs).where(jobs.c.id == bogus))
    assert row.state == "failed"
    assert (
        row.last_error
        == "no handler for job kind 'reticulate' in this worker (it runs: digest, embed, harvest)"
    )


def test_a_harvest_job_from_a_file_and_a_bad_one(tmp_path: Path, fixtures_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with make_engine(url) as eng:
        good = eng.storage.enqueue("harvest", {"source": "rss", "file": str(fixtures_dir / RSS)})
        bad = eng.storage.enqueue("harvest", {"source": "gopher"}, max_attempts=1)
        # A harvest-only worker: the embedding job it queues waits for a worker that embeds.
        report = Worker(eng, worker_id="t", kinds=["harvest"], schedules=[]).run(once=True)
        assert (report.done, report.failed) == (1, 1)
        assert eng.stats()["papers"] == PER_FEED
        # the same file again: nothing new, so no second embedding job
        eng.storage.enqueue("harvest", {"source": "rss", "file": str(fixtures_dir / RSS)})
        assert Worker(eng, worker_id="t", kinds=["harvest"], schedules=[]).run(once=True).done == 1
    by_id = {r.id: r for r in rows(url, sa.select(jobs))}
    assert by_id[good].state == "done"
    assert by_id[bad].state == "failed"
    assert "unknown source 'gopher'" in by_id[bad].last_error
    assert [r.key for r in by_id.values() if r.kind == "embed"] == ["embed"]


def test_stopping_releases_the_running_job_without_counting_the_attempt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    seen: list[int] = []

    def slow(ctx: JobContext) -> None:
        seen.append(ctx.job.id)
        ctx.stop.set()  # as SIGTERM does
        ctx.tick()  # the next unit of work: stops here

    with make_engine(url) as eng:
        job_id = eng.storage.enqueue("slow", {})
        report = Worker(eng, worker_id="t", handlers={"slow": slow}, schedules=[]).run(once=True)
        assert report.released == 1 and seen == [job_id]
    (row,) = rows(url, sa.select(jobs).where(jobs.c.id == job_id))
    assert (row.state, row.attempts, row.locked_by) == ("queued", 0, None)


def test_enqueue_and_jobs_commands_then_a_worker_once(
    tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from paperradar.cli import app

    monkeypatch.setenv("PAPERRADAR_CONFIG", str(tmp_path / "none.toml"))
    for name in QUIET:
        monkeypatch.setenv(f"PAPERRADAR_{name.upper()}", "")
    runner = CliRunner()
    db = str(tmp_path / "cli.db")
    payload = json.dumps({"source": "rss", "file": str(fixtures_dir / RSS)})
    r = runner.invoke(app, ["--db", db, "enqueue", "harvest", payload, "--key", "k"])
    assert r.exit_code == 0 and r.stdout.startswith("job 1 queued")
    r = runner.invoke(app, ["--db", db, "enqueue", "harvest", payload, "--key", "k"])
    assert r.stdout.startswith("job 1 queued")  # the same pending job
    r = runner.invoke(app, ["--db", db, "enqueue", "harvest", "[1]"])
    assert r.exit_code == 2 and "payload must be a JSON object" in r.stderr
    r = runner.invoke(app, ["--db", db, "worker", "--once", "--quiet", "--kinds", "harvest"])
    assert r.exit_code == 0 and "done 1  failed 0" in r.stdout
    r = runner.invoke(app, ["--db", db, "jobs", "--json"])
    assert json.loads(r.stdout) == [
        {"kind": "embed", "state": "queued", "jobs": 1},
        {"kind": "harvest", "state": "done", "jobs": 1},
    ]


def test_the_embedding_job_a_harvest_queues_is_run_by_a_worker_that_embeds(
    tmp_path: Path, fixtures_dir: Path, models_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with make_engine(url, data_dir=models_dir) as eng:
        eng.storage.enqueue("harvest", {"source": "rss", "file": str(fixtures_dir / RSS)})
        report = Worker(eng, worker_id="t", schedules=[]).run(once=True)
        # the harvest, the embedding job it queued and the one block job that split off, in
        # the same pass
        assert (report.done, report.failed) == (3, 0)
        assert eng.stats()["embeddings"] == eng.stats()["papers"] == PER_FEED
        hits = eng.search("language models", mode="hybrid").hits
        assert hits and any("semantic" in h.matched_by for h in hits)
    kinds = sorted((r.kind, r.key, r.state) for r in rows(url, sa.select(jobs)))
    assert kinds == [
        ("embed", "embed", "done"),
        ("embed", "embed:0", "done"),
        ("harvest", None, "done"),
    ]


def test_workers_share_an_embedding_backlog_none_twice_none_lost_after_a_kill(
    db_url: str, tmp_path: Path, models_dir: Path, spawn: Any
) -> None:
    """Four workers split a backlog into pk-block jobs; one is killed -9 in the middle of a job.
    Every paper ends with one vector, and the ledger of stored batches (each job attempt logs
    how many papers it has stored so far) adds up to exactly the backlog: no batch twice."""
    n_papers, block = 192, 48
    words = [
        "protein",
        "folding",
        "graph",
        "neural",
        "network",
        "climate",
        "model",
        "galaxy",
        "survey",
    ]
    with make_engine(db_url, data_dir=models_dir) as eng:
        eng.embedder()  # derive the int8 model once, before four processes want it
        add(
            eng,
            *(
                paper(
                    [f"2702.{i:05d}"],
                    f"Backlog paper {i} on {words[i % len(words)]}",
                    abstract=" ".join(words[(i + k) % len(words)] for k in range(100)),
                )
                for i in range(n_papers)
            ),
        )
        pks = sorted(r.pk for r in rows(db_url, sa.select(papers.c.pk)))
    env = child_env(
        tmp_path,
        database_url=db_url,
        data_dir=str(models_dir),
        embed_job_papers=str(block),
        embed_batch_size="8",
        worker_lease_s="10",  # a heartbeat starved for > 6 s would lose a live job's lease
        worker_poll_s="0.1",
        **QUIET,
    )
    logs = [tmp_path / f"e{k}.log" for k in range(4)]
    workers = [
        spawn(["worker", "--id", f"e{k}", "--kinds", "embed"], env, logs[k]) for k in range(4)
    ]
    # The backlog is queued once every worker has its model: four processes loading (and
    # OpenVINO compiling) at once on a busy 2-core machine took a minute, and the first worker
    # ready would otherwise race through its 4 s leases beside the three still loading.
    wait_for(
        lambda: all("embedding model" in f.read_text() for f in logs),
        300,
        "every worker to have loaded the embedding model",
    )
    with make_engine(db_url, data_dir=models_dir) as eng:
        eng.storage.enqueue("embed", {}, key="embed")
    ledger = re.compile(r"job (\d+): (\d+) papers embedded and stored")

    def e0_is_midway() -> bool:
        held = rows(
            db_url,
            sa.select(jobs.c.id).where(jobs.c.state == "running", jobs.c.locked_by == "e0"),
        )
        stored = {int(m[1]) for m in ledger.finditer(logs[0].read_text())}
        return any(r.id in stored for r in held)

    wait_for(e0_is_midway, 120, "worker e0 to have stored part of a block")
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)

    def all_done() -> bool:
        states = [r.state for r in rows(db_url, sa.select(jobs.c.state))]
        return len(states) > 1 and all(s == "done" for s in states)

    wait_for(all_done, 180, "every embedding job to be done")
    for w in workers[1:]:
        w.send_signal(signal.SIGTERM)
    for k, w in enumerate(workers[1:], 1):
        assert w.wait(timeout=15) == 0, logs[k].read_text()[-2000:]

    done = rows(db_url, sa.select(jobs))
    split = [json.loads(r.payload) for r in done if r.key == "embed"]
    assert split == [{}]
    blocks = sorted(json.loads(r.payload)["pk_from"] for r in done if r.key != "embed")
    assert blocks == sorted({pk // block * block for pk in pks})
    assert {r.state for r in done} == {"done"} and {r.locked_by for r in done} == {None}
    retried = [r.id for r in done if r.attempts > 1]
    assert len(retried) == 1  # the killed worker's job, taken over by another worker
    # Every paper has exactly one vector.
    with make_engine(db_url, data_dir=models_dir) as eng:
        name = eng.embedder().name
        assert eng.storage.count_embeddings(name) == n_papers
        assert eng.storage.embedding_backlog(name, 10) == []
    # The ledger: per job attempt (worker, job), the papers it had stored when it ended or died.
    attempts: dict[tuple[int, int], int] = {}
    for k, path in enumerate(logs):
        for m in ledger.finditer(path.read_text()):
            key = (k, int(m[1]))
            attempts[key] = max(attempts.get(key, 0), int(m[2]))
    assert sum(attempts.values()) == n_papers  # no paper stored twice, none lost
    # The killed job: its first attempt stored part of the block, the second only the rest.
    (job_id,) = retried
    (start,) = (json.loads(r.payload)["pk_from"] for r in done if r.id == job_id)
    in_block = sum(1 for pk in pks if start <= pk < start + block)
    before = attempts[(0, job_id)]
    after = [v for (k, j), v in attempts.items() if j == job_id and k != 0]
    assert 0 < before < in_block and after == [in_block - before]

"""Exactly once per (subscriber, period) with real processes: ``paperradar digest run`` killed
with SIGKILL mid-run and re-run, and two runs at once, against a real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from digest_corpus import AT, EngineFactory, corpus, subscribe_confirmed

from mailserver import MailServer
from paperradar.engine import Engine

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _setup(make_eng: EngineFactory, mail: MailServer, n: int) -> tuple[Engine, list[str]]:
    eng = make_eng()
    eng.storage.write_papers(corpus(AT))
    people = [f"r{i:02d}@example.org" for i in range(n)]
    topics = ["language model", "vision", "diffusion", "neurons"]
    for i, who in enumerate(people):
        subscribe_confirmed(eng, mail, who, queries=[topics[i % 4]], max_items=5)
    return eng, people


def _runner(eng: Engine, mail: MailServer, tmp: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "PYTHONPATH": SRC,
        "PAPERRADAR_CONFIG": str(tmp / "none.toml"),
        "PAPERRADAR_DATA_DIR": str(eng.settings.data_dir),
        "PAPERRADAR_SMTP_URL": mail.url,
        "PAPERRADAR_BASE_URL": eng.settings.base_url,
        "PAPERRADAR_MAIL_FROM": eng.settings.mail_from,
        "PAPERRADAR_SEARCH_MODE": "keyword",
        **env,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paperradar",
            "--db",
            eng.storage.url,
            "digest",
            "run",
            "--at",
            AT.isoformat(),
            "--json",
        ],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _digests(mail: MailServer) -> list[tuple[str, str]]:
    with mail.recorder.lock:
        return [
            (str(m["To"]), str(m["Message-ID"]))
            for m in mail.recorder.messages
            if str(m["Message-ID"]).startswith("<digest.")
        ]


def test_kill_9_mid_run_then_rerun_no_duplicate_no_miss(
    make_eng: EngineFactory, mail: MailServer, tmp_path: Path
) -> None:
    eng, people = _setup(make_eng, mail, 24)
    slow = _runner(
        eng, mail, tmp_path, PAPERRADAR_SMTP_RATE_PER_S="12", PAPERRADAR_DIGEST_LEASE_S="1"
    )
    deadline = time.monotonic() + 60
    while len(_digests(mail)) < 6:
        assert slow.poll() is None, slow.stderr.read() if slow.stderr else ""
        assert time.monotonic() < deadline, "the runner sent nothing"
        time.sleep(0.02)
    slow.send_signal(signal.SIGKILL)
    slow.communicate()
    assert slow.returncode == -signal.SIGKILL
    sent_before = len(_digests(mail))
    assert 6 <= sent_before < len(people)  # it really died mid-run
    time.sleep(1.2)  # the dead runner's leases run out
    rerun = _runner(eng, mail, tmp_path, PAPERRADAR_DIGEST_LEASE_S="1")
    _out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    got = _digests(mail)
    per_person = {who: {mid for w, mid in got if w == who} for who in people}
    # No miss, and one digest (one Message-ID) per person.
    assert all(len(ids) == 1 for ids in per_person.values()), per_person
    # A message the dead runner handed to SMTP but had not recorded may go out again, with the
    # same Message-ID: at most one such (the one in flight when it died).
    assert len(got) - len(people) <= 1
    for sub in eng.subscriptions("active"):
        assert [r["state"] for r in eng.storage.ledger(sub.id)] == ["sent"]
    # And a third run sends nothing.
    third = _runner(eng, mail, tmp_path)
    third.communicate(timeout=60)
    assert len(_digests(mail)) == len(got)


def test_two_runners_at_once_send_each_digest_once(
    make_eng: EngineFactory, mail: MailServer, tmp_path: Path
) -> None:
    eng, people = _setup(make_eng, mail, 30)
    env = {"PAPERRADAR_DIGEST_BATCH": "3", "PAPERRADAR_SMTP_RATE_PER_S": "60"}
    a = _runner(eng, mail, tmp_path, **env)
    b = _runner(eng, mail, tmp_path, **env)
    outs = [p.communicate(timeout=90) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, [e.decode() for _, e in outs]
    import json

    reports = [json.loads(o) for o, _ in outs]
    assert sum(r["sent"] for r in reports) == len(people)
    got = _digests(mail)
    assert Counter(who for who, _ in got) == dict.fromkeys(people, 1)

"""The CLI contract of issue 7: trending, subscribe, digest run / preview (real SMTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from digest_corpus import AT, corpus, link, token_of
from typer.testing import CliRunner

from mailserver import MailServer
from paperradar.cli import app
from paperradar.engine import make_engine

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, mail: MailServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key, value in {
        "PAPERRADAR_CONFIG": str(tmp_path / "none.toml"),
        "PAPERRADAR_DATA_DIR": str(tmp_path / "data"),
        "PAPERRADAR_SMTP_URL": mail.url,
        "PAPERRADAR_SMTP_RATE_PER_S": "0",
        "PAPERRADAR_SMTP_RETRIES": "1",
        "PAPERRADAR_SMTP_BACKOFF_S": "0.01",
        "PAPERRADAR_BASE_URL": "http://paperradar.test",
        "PAPERRADAR_SEARCH_MODE": "keyword",
    }.items():
        monkeypatch.setenv(key, value)
    db = tmp_path / "cli.db"
    eng = make_engine(str(db))
    eng.storage.write_papers(corpus(AT))
    eng.close()
    yield db


def run(db: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", str(db), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_subscribe_run_preview(env: Path, mail: MailServer) -> None:
    code, out, _ = run(
        env,
        "subscribe",
        "Zoe@Example.org",
        "--query",
        "vision",
        "--query",
        "diffusion",
        "--category",
        "cs.LG",
        "--timezone",
        "Europe/Berlin",
        "--frequency",
        "daily",
    )
    assert code == 0 and "Check your inbox" in out
    eng = make_engine(str(env))
    eng.confirm_subscription(token_of(link(mail.recorder.to("zoe@example.org")[0], "confirm")))
    eng.close()
    code, out, _ = run(env, "digest", "preview", "zoe@example.org", "--at", AT.isoformat())
    assert code == 0 and out.startswith("Subject: paperradar:") and "Why:" in out
    code, out, _ = run(env, "digest", "run", "--at", AT.isoformat(), "--dry-run", "--json")
    assert code == 0 and json.loads(out)["previews"][0]["email"] == "zoe@example.org"
    assert len(mail.recorder.to("zoe@example.org")) == 1  # dry run sent nothing
    code, out, _ = run(env, "digest", "run", "--at", AT.isoformat(), "--json")
    assert code == 0 and json.loads(out)["sent"] == 1
    code, out, _ = run(env, "digest", "run", "--at", AT.isoformat())
    assert code == 0 and "sent 0  already sent 1" in out


def test_errors_are_one_line_exit_2(env: Path) -> None:
    code, _, err = run(env, "subscribe", "not-an-address", "--query", "x")
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    code, _, err = run(env, "subscribe", "a@example.org", "--timezone", "Mars/Base")
    assert code == 2 and "time zone" in err
    code, _, err = run(env, "digest", "run", "--at", "yesterday")
    assert code == 2 and "ISO" in err
    code, _, err = run(env, "digest", "preview", "nobody@example.org")
    assert code == 2 and "no subscription" in err


def test_trending_json_scores_best_first(env: Path) -> None:
    eng = make_engine(str(env))
    recent = corpus(datetime.now(UTC))
    for p in recent:
        p.id = p.arxiv_id = "2612." + p.id.split(".")[1]
    eng.storage.write_papers(recent)
    eng.close()
    code, out, _ = run(env, "trending", "--window", "month", "--limit", "5", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 5
    scores = [r["trending_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[0]["upvotes"]  # the upvoted topic leads
    code, _, err = run(env, "trending", "--window", "year")
    assert code == 2 and "day, week or month" in err


def test_smtp_down_is_exit_2_and_a_rerun_sends(env: Path, mail: MailServer) -> None:
    run(env, "subscribe", "yan@example.org", "--category", "cs.CL")
    eng = make_engine(str(env))
    eng.confirm_subscription(token_of(link(mail.recorder.to("yan@example.org")[0], "confirm")))
    eng.close()
    mail.stop()
    code, _, err = run(env, "digest", "run", "--at", AT.isoformat())
    assert code == 2 and "SMTP server is unavailable" in err
    mail.restart()
    code, out, _ = run(env, "digest", "run", "--at", AT.isoformat(), "--json")
    assert code == 0 and json.loads(out)["sent"] == 1

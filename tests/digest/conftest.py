"""Fixtures of the digest tests: a real SMTP server (aiosmtpd on 127.0.0.1) and a real SQLite
engine pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from digest_corpus import EngineFactory

from mailserver import MailServer
from paperradar.engine import Engine, make_engine


@pytest.fixture
def mail() -> Iterator[MailServer]:
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_eng(tmp_path: Path, mail: MailServer) -> Iterator[EngineFactory]:
    made: list[Engine] = []

    def make(**overrides: Any) -> Engine:
        settings: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "smtp_url": mail.url,
            "base_url": "http://paperradar.test",
            "mail_from": "paperradar <digest@paperradar.test>",
            "smtp_rate_per_s": 0.0,
            "smtp_backoff_s": 0.01,
            "smtp_retries": 1,
            "search_mode": "keyword",
        }
        settings.update(overrides)
        eng = make_engine(str(tmp_path / "digest.db"), **settings)
        made.append(eng)
        return eng

    yield make
    for e in made:
        e.close()

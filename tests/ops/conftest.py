"""Fixtures for the multi-process tests: a database URL of each backend (an empty SQLite file;
the PostgreSQL test database, emptied) and a way to start ``python -m paperradar`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from paperradar.storage import open_storage
from paperradar.storage.schema import metadata

PG_ENV = "PAPERRADAR_TEST_POSTGRES_URL"
SRC = Path(__file__).resolve().parents[2] / "src"


def empty_postgres(url: str) -> str:
    from paperradar.storage.postgres import driver_url

    open_storage(url).close()  # migrated
    engine = sa.create_engine(driver_url(url))
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f'PostgreSQL tests need {PG_ENV}: run eval "$(.ci/postgres.sh)"')
    return empty_postgres(url)


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f'PostgreSQL tests need {PG_ENV}: run eval "$(.ci/postgres.sh)"')
    return empty_postgres(url)


def child_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """An environment for ``python -m paperradar`` running this checkout with ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERRADAR_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PAPERRADAR_CONFIG"] = str(tmp_path / "no-config.toml")
    env["PAPERRADAR_DATA_DIR"] = str(tmp_path / "data")
    env.update({f"PAPERRADAR_{k.upper()}": v for k, v in settings.items()})
    return env


@pytest.fixture
def spawn() -> Iterator[object]:
    """``spawn(args, env)`` starts ``python -m paperradar *args``; every process is ended after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        fh = log.open("wb")
        p = subprocess.Popen(
            [sys.executable, "-m", "paperradar", *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        fh.close()
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)

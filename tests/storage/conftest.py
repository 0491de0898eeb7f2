"""The ``storage`` fixture: every contract test runs on SQLite and on PostgreSQL.

PostgreSQL needs ``PAPERRADAR_TEST_POSTGRES_URL`` (``eval "$(.ci/postgres.sh)"`` starts a
throw-away server and sets it); without it the PostgreSQL cases skip and say so. The database is
wiped once per session (schema dropped, every migration re-run from nothing) and its tables are
emptied before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from paperradar.storage import Storage, open_storage
from paperradar.storage.schema import metadata

PG_ENV = "PAPERRADAR_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f'PostgreSQL contract tests need {PG_ENV}: run eval "$(.ci/postgres.sh)"')
    from paperradar.storage.postgres import driver_url

    engine = sa.create_engine(driver_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    open_storage(url).close()  # run every migration once, from an empty schema
    yield url


def _truncate_postgres(url: str) -> None:
    from paperradar.storage.postgres import driver_url

    engine = sa.create_engine(driver_url(url))
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        hnsw = conn.execute(
            sa.text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_embeddings_hnsw_%'")
        ).scalars()
        for name in list(hnsw):  # per-model vector indexes fix a model's dimension
            conn.execute(sa.text(f"DROP INDEX {name}"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty, migrated database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def storage(storage_url: str) -> Iterator[Storage]:
    st = open_storage(storage_url)
    yield st
    st.close()

"""PostgreSQL reads: whole papers in one statement, pooled connections pinged only when idle,
and the tsvector kept in the heap row (migration 0008)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from paperradar.model import Author, Paper, Version
from paperradar.storage import open_storage
from paperradar.storage import postgres as pg

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("storage_url", ["postgres"], indirect=True),
]


@pytest.fixture
def st(storage_url: str) -> Iterator[pg.PostgresStorage]:
    storage = open_storage(storage_url)
    assert isinstance(storage, pg.PostgresStorage)
    yield storage
    storage.close()


def _paper(i: int, versions: list[Version] | None = None) -> Paper:
    return Paper(
        id=f"2406.{i:05d}",
        title=f"Paper {i}",
        abstract="sparse methods",
        authors=[Author("Ada")],
        versions=versions or [],
    )


def test_papers_come_with_their_versions_in_order(st: pg.PostgresStorage) -> None:
    v1 = Version(1, datetime(2024, 3, 2, tzinfo=UTC), "1MB")
    v3 = Version(3, datetime(2024, 4, 1, tzinfo=UTC), None)
    st.write_papers([_paper(1, [v3, v1]), _paper(2)])
    pks = st.pks_for_ids(["2406.00001", "2406.00002"])
    by_pk = st.papers_by_pk([*pks.values(), 999_999])
    assert set(by_pk) == set(pks.values())
    assert by_pk[pks["2406.00001"]].versions == [v1, v3]
    assert by_pk[pks["2406.00002"]].versions == []
    got = st.get_papers(["2406.00002", "missing", "2406.00001", "2406.00002"])
    assert [p.id for p in got] == ["2406.00002", "2406.00001", "2406.00002"]
    assert got[1].versions == [v1, v3]
    assert st.get_papers([]) == [] and st.papers_by_pk([]) == {}


def _backend_pid(st: pg.PostgresStorage) -> int:
    with st._reads.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_that_died_while_idle_is_replaced(
    st: pg.PostgresStorage, storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    st.write_papers([_paper(1)])
    pid = _backend_pid(st)  # the pool keeps this connection
    admin = sa.create_engine(pg.driver_url(storage_url))
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()
    monkeypatch.setattr(pg, "PING_AFTER_IDLE_S", 0.0)  # it has been idle "long enough"
    assert [p.id for p in st.get_papers(["2406.00001"])] == ["2406.00001"]
    assert _backend_pid(st) != pid


def test_tsvector_is_kept_in_the_row(st: pg.PostgresStorage) -> None:
    with st.engine.connect() as conn:
        storage = conn.execute(
            sa.text(
                "SELECT attstorage FROM pg_attribute "
                "WHERE attrelid = 'papers'::regclass AND attname = 'tsv'"
            )
        ).scalar_one()
    assert storage == "m"

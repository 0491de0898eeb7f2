"""The embedded SQLite store under the web server's concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

from paperradar.storage import open_storage
from paperradar.storage.sql import SqlStorage


def test_sqlite_serves_as_many_concurrent_connections_as_web_threads(tmp_path: Path) -> None:
    """The web layer runs requests on up to 40 threads at once; each must get a connection
    instead of waiting for the pool (the default 5 + 10 made request 16 fail with a timeout)."""
    storage = open_storage(f"sqlite:///{tmp_path / 'pool.db'}")
    assert isinstance(storage, SqlStorage)
    threads = 40
    barrier = threading.Barrier(threads, timeout=20)
    failures: list[str] = []

    def hold() -> None:
        try:
            with storage.engine.connect() as conn:
                conn.exec_driver_sql("SELECT count(*) FROM papers").scalar()
                barrier.wait()  # every thread holds its connection at the same time
        except Exception as exc:
            failures.append(repr(exc))

    workers = [threading.Thread(target=hold) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    storage.close()
    assert failures == []

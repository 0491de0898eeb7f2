"""The listings walk an index (migration 0005) instead of sorting the whole table: at 1 M papers
that is the difference between ~2 s and a few ms for the first page on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paperradar.storage import PaperFilter, open_storage


@pytest.mark.parametrize(
    ("sort", "index"),
    [("published", "ix_papers_listing_date"), ("upvotes", "ix_papers_listing_upvotes")],
)
def test_a_listing_page_is_read_through_its_index(tmp_path: Path, sort: Any, index: str) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'plan.db'}")
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if "ORDER BY" in statement:
            seen.append((statement, params))

    engine = storage.engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        storage.list_papers(PaperFilter(), sort=sort, limit=20)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert seen, "the listing issued no ORDER BY query"
    statement, params = seen[0]
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
        )
    storage.close()
    assert index in plan and "TEMP B-TREE" not in plan, plan

"""PostgreSQL: one GIN index for keyword search, its filters included, keyed by blocks of 4096 pks.

``ix_papers_search`` on ``papers``::

    gin ((pk / 4096), tsv, <category keys>, lower(author_names) gin_trgm_ops)

Beyond 20 k papers keyword search ranks the newest matches, found in windows of pk blocks back
from the newest paper (``PostgresStorage._newest_matches``). Each window asks for a list of
blocks (``pk / 4096 = ANY(…)``): for each block the GIN scan ANDs the block's posting list with
the query's words, the category keys and the author trigrams, skipping through the long posting
lists, so a window costs about its matches. Migration 0007's ``(pk / 1024) >= b`` was a range:
the scan collected every pk of it (~26 ms for 128 k papers at 1 M, even for a rare match), and
the ``cat:``/``author:`` filters were checked row by row (an author's trigram index, read whole,
took 80 ms for a common name). This index replaces ``ix_papers_recent_tsv`` (0007) and
``ix_papers_author_names_trgm`` (0002): it serves their scans too.

Category keys: every category of the paper and its archive (``cs.LG`` and ``cs``), so ``cat:cs``
and ``cat:cs.LG`` are each one key (the filter matches on a category boundary on both backends).

Needs ``btree_gin`` (0007 created it where allowed); without it nothing changes here. Without
``pg_trgm`` the author column is left out. At 1 M papers the build takes minutes (see
docs/operations.md); writes to ``papers`` wait meanwhile. SQLite: nothing.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CATEGORY_KEYS = (
    "(string_to_array(btrim(categories), ' ') || "
    "string_to_array(btrim(regexp_replace(categories, '\\.\\S*', '', 'g')), ' '))"
)


def _has_extension(name: str) -> bool:
    return bool(
        op.get_bind()
        .execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": name})
        .first()
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql" or not _has_extension("btree_gin"):
        return
    authors = ", lower(author_names) gin_trgm_ops" if _has_extension("pg_trgm") else ""
    op.execute("SET LOCAL maintenance_work_mem = '1GB'")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_papers_search ON papers USING gin "
        f"((pk / 4096), tsv, {CATEGORY_KEYS}{authors}) WITH (fastupdate = off)"
    )
    op.execute("DROP INDEX IF EXISTS ix_papers_recent_tsv")
    if authors:
        op.execute("DROP INDEX IF EXISTS ix_papers_author_names_trgm")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    if _has_extension("pg_trgm"):
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_papers_author_names_trgm ON papers "
            "USING gin (lower(author_names) gin_trgm_ops)"
        )
    if _has_extension("btree_gin"):
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_papers_recent_tsv ON papers "
            "USING gin ((pk / 1024), tsv) WITH (fastupdate = off)"
        )
    op.execute("DROP INDEX IF EXISTS ix_papers_search")

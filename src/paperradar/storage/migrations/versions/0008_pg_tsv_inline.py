"""PostgreSQL: each paper's tsvector is kept in its heap row (compressed), not in TOAST.

Keyword search ranks a few hundred candidate rows with ``ts_rank``, which reads each row's
``tsv``. With the default storage (``EXTENDED``) a paper's tsvector, its largest value, was the
first to move out of line, so every ranked candidate cost a TOAST index lookup and a TOAST heap
page besides its own row. ``STORAGE MAIN`` keeps it in the row, compressed (the abstract moves
out of line first: only the page of results reads it, not the ranking); ``lz4``, where the
server has it, decompresses several times faster than the default ``pglz``.

Both settings apply to rows written from now on: an existing database keeps its rows as they
are until they are rewritten (``VACUUM FULL papers``, which locks the table while it runs; see
docs/operations.md). SQLite: nothing.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE papers ALTER COLUMN tsv SET STORAGE MAIN")
    nested = bind.begin_nested()
    try:  # a server built without lz4 keeps pglz
        bind.execute(sa.text("ALTER TABLE papers ALTER COLUMN tsv SET COMPRESSION lz4"))
    except sa.exc.DBAPIError:
        nested.rollback()
    else:
        nested.commit()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE papers ALTER COLUMN tsv SET STORAGE EXTENDED")
    op.execute("ALTER TABLE papers ALTER COLUMN tsv SET COMPRESSION DEFAULT")

"""SQLite: the keyword index moves from FTS5 to a tantivy folder next to the database file.

``papers_fts`` goes (FTS5 scored every matching row: hundreds of ms per common word at 1 M
papers); ``keyword_changes`` comes: the pks each papers transaction touched, in commit order
(``seq``), from which the index catches up after a crash or another process's writes (see
``storage/keyword_index.py``). The index of an existing database is built from ``papers`` on its
first use, with a message. PostgreSQL keeps its tsvector column and needs neither.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from paperradar.storage.fts import CREATE_FTS_TABLE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "keyword_changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pk", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.execute("DROP TABLE papers_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(CREATE_FTS_TABLE)
    op.execute(
        "INSERT INTO papers_fts(rowid, title, abstract, authors) "
        "SELECT pk, title, abstract, author_names FROM papers"
    )
    op.drop_table("keyword_changes")

"""Indexes for the listings' sort keys, so a page of the newest or most upvoted papers is an index
walk instead of a sort of the whole table (SQLite at 1 M papers: 2 s → 3 ms for the first page).

The listing orders by ``coalesce(published, first_seen)`` (papers without a publication date
sort by when we first saw them) and by ``coalesce(upvotes, 0)``. PostgreSQL has had these two
expression indexes since 0002; this gives SQLite the same.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL: ix_papers_published_key and ix_papers_upvotes (0002)
    op.create_index(
        "ix_papers_listing_date",
        "papers",
        [sa.text("coalesce(published, first_seen)"), "pk"],
    )
    op.create_index("ix_papers_listing_upvotes", "papers", [sa.text("coalesce(upvotes, 0)"), "pk"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_papers_listing_upvotes", "papers")
    op.drop_index("ix_papers_listing_date", "papers")

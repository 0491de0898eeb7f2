"""Papers, versions, source state, embeddings and the keyword index.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String, nullable=False, unique=True),
        sa.Column("arxiv_id", sa.String),
        sa.Column("version", sa.Integer),
        sa.Column("doi", sa.String),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_key", sa.String, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False, server_default=""),
        sa.Column("authors", sa.Text, nullable=False, server_default="[]"),
        sa.Column("author_names", sa.Text, nullable=False, server_default=""),
        sa.Column("categories", sa.Text, nullable=False, server_default=""),
        sa.Column("primary_category", sa.String),
        sa.Column("published", sa.DateTime),
        sa.Column("updated", sa.DateTime),
        sa.Column("links", sa.Text, nullable=False, server_default="{}"),
        sa.Column("upvotes", sa.Integer),
        sa.Column("comments", sa.Integer),
        sa.Column("stars", sa.Integer),
        sa.Column("citations", sa.Integer),
        sa.Column("sources", sa.Text, nullable=False, server_default=""),
        sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
        sa.Column("content_hash", sa.String, nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
    )
    op.create_index("ix_papers_doi", "papers", ["doi"])
    op.create_index("ix_papers_title_key", "papers", ["title_key"])
    op.create_index("ix_papers_published", "papers", ["published", "pk"])
    op.create_index("ix_papers_first_seen", "papers", ["first_seen", "pk"])
    op.create_table(
        "paper_versions",
        sa.Column(
            "paper_pk",
            sa.Integer,
            sa.ForeignKey("papers.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("date", sa.DateTime),
        sa.Column("size", sa.String),
    )
    op.create_table(
        "source_state",
        sa.Column("source", sa.String, primary_key=True),
        sa.Column("checkpoint", sa.Text, nullable=False, server_default="{}"),
        sa.Column("last_run", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("seen", sa.Integer, nullable=False, server_default="0"),
        sa.Column("new", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "embeddings",
        sa.Column(
            "paper_pk",
            sa.Integer,
            sa.ForeignKey("papers.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("model", sa.String, primary_key=True),
        sa.Column("content_hash", sa.String, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Keyword index: FTS5 with its own copy of the text, kept in step by storage code.
        op.execute(
            "CREATE VIRTUAL TABLE papers_fts USING fts5("
            "title, abstract, authors, tokenize = 'porter unicode61 remove_diacritics 2')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE papers_fts")
    op.drop_table("embeddings")
    op.drop_table("source_state")
    op.drop_table("paper_versions")
    op.drop_table("papers")

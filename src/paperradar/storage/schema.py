"""The tables, as SQLAlchemy Core metadata shared by every backend.

Migrations (``migrations/versions``) are the source of truth for the database; this module mirrors
them for building queries. Full-text tables are backend-specific and live in the migrations.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

papers = sa.Table(
    "papers",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String, nullable=False, unique=True),
    sa.Column("arxiv_id", sa.String),
    sa.Column("version", sa.Integer),
    sa.Column("doi", sa.String),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("title_key", sa.String, nullable=False),
    sa.Column("abstract", sa.Text, nullable=False, server_default=""),
    sa.Column(
        "authors", sa.Text, nullable=False, server_default="[]"
    ),  # JSON [{name, affiliations}]
    sa.Column("author_names", sa.Text, nullable=False, server_default=""),  # "A; B; C" for search
    sa.Column("categories", sa.Text, nullable=False, server_default=""),  # " cs.LG stat.ML "
    sa.Column("primary_category", sa.String),
    sa.Column("published", sa.DateTime),  # UTC, naive
    sa.Column("updated", sa.DateTime),
    sa.Column("links", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("upvotes", sa.Integer),
    sa.Column("comments", sa.Integer),
    sa.Column("stars", sa.Integer),
    sa.Column("citations", sa.Integer),
    sa.Column("sources", sa.Text, nullable=False, server_default=""),  # " arxiv_api hf_daily "
    sa.Column("extra", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("content_hash", sa.String, nullable=False),
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
)

paper_versions = sa.Table(
    "paper_versions",
    metadata,
    sa.Column(
        "paper_pk", sa.Integer, sa.ForeignKey("papers.pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("date", sa.DateTime),
    sa.Column("size", sa.String),
)

source_state = sa.Table(
    "source_state",
    metadata,
    sa.Column("source", sa.String, primary_key=True),  # e.g. "arxiv_oai:cs"
    sa.Column("checkpoint", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("last_run", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("seen", sa.Integer, nullable=False, server_default="0"),
    sa.Column("new", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
)

embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column(
        "paper_pk", sa.Integer, sa.ForeignKey("papers.pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("model", sa.String, primary_key=True),
    sa.Column("content_hash", sa.String, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32 little-endian
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("key", sa.String),  # dedupe: one pending (queued/running) job per key
    sa.Column("payload", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("state", sa.String, nullable=False, server_default="queued"),
    sa.Column("run_after", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
    sa.Column("locked_by", sa.String),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("next_run", sa.DateTime, nullable=False),
    sa.Column("last_run", sa.DateTime),
    sa.Column("last_worker", sa.String),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String, nullable=False, unique=True),
    sa.Column("status", sa.String, nullable=False, server_default="pending"),
    sa.Column("interests", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("frequency", sa.String, nullable=False, server_default="daily"),
    sa.Column("send_hour", sa.Integer, nullable=False, server_default="7"),
    sa.Column("timezone", sa.String, nullable=False, server_default="UTC"),
    sa.Column("max_items", sa.Integer, nullable=False, server_default="20"),
    sa.Column("weekends", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.Column("confirmed", sa.DateTime),
    sa.Column("mailed", sa.DateTime),
    sa.Column("last_digest", sa.DateTime),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
)

digest_ledger = sa.Table(
    "digest_ledger",
    metadata,
    sa.Column(
        "subscription_id",
        sa.Integer,
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("period", sa.String, primary_key=True),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("message_id", sa.String, nullable=False),
    sa.Column("owner", sa.String),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("items", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("sent", sa.DateTime),
    sa.Column("error", sa.Text),
)

digest_sent = sa.Table(
    "digest_sent",
    metadata,
    sa.Column(
        "subscription_id",
        sa.Integer,
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("paper_id", sa.String, primary_key=True),
    sa.Column("sent", sa.DateTime, nullable=False),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column(
        "subscription_id",
        sa.Integer,
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("paper_id", sa.String, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

paper_events = sa.Table(
    "paper_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("paper_id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

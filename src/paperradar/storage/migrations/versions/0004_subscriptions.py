"""Email digests: subscriptions, the digest ledger (exactly once per subscriber and period), papers
already sent, per-subscriber feedback, and reader events (clicks, saves) for trending.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String, nullable=False, unique=True),  # lower-cased
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
        sa.Column("mailed", sa.DateTime),  # last confirmation/notice mail (throttles re-sends)
        sa.Column("last_digest", sa.DateTime),  # when the previous digest was sent
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_subscriptions_status", "subscriptions", ["status"])
    op.create_table(
        "digest_ledger",
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("period", sa.String, primary_key=True),  # "2026-12-01" or "2026-W49"
        sa.Column("state", sa.String, nullable=False),  # claimed, composed, sent, failed
        sa.Column("message_id", sa.String, nullable=False),
        sa.Column("owner", sa.String),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("items", sa.Text),  # JSON: the composed digest, re-sent as is after a crash
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("sent", sa.DateTime),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "digest_sent",
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("paper_id", sa.String, primary_key=True),
        sa.Column("sent", sa.DateTime, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("paper_id", sa.String, primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),  # +1 more like this, -1 less
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "paper_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("paper_id", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),  # click, save
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_paper_events_at", "paper_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_paper_events_at", "paper_events")
    op.drop_table("paper_events")
    op.drop_table("feedback")
    op.drop_table("digest_sent")
    op.drop_table("digest_ledger")
    op.drop_index("ix_subscriptions_status", "subscriptions")
    op.drop_table("subscriptions")

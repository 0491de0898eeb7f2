"""Work distribution: a job queue with leases, and schedules that fire once across workers.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("key", sa.String),  # dedupe: one pending job per key
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
    pending = sa.text("state IN ('queued', 'running')")
    op.create_index(
        "ux_jobs_pending_key",
        "jobs",
        ["key"],
        unique=True,
        sqlite_where=pending,
        postgresql_where=pending,
    )
    op.create_index(
        "ix_jobs_claim",
        "jobs",
        ["state", "run_after", "id"],
        sqlite_where=pending,
        postgresql_where=pending,
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("next_run", sa.DateTime, nullable=False),
        sa.Column("last_run", sa.DateTime),
        sa.Column("last_worker", sa.String),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_index("ix_jobs_claim", "jobs")
    op.drop_index("ux_jobs_pending_key", "jobs")
    op.drop_table("jobs")

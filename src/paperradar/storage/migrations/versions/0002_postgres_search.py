"""PostgreSQL keyword and vector search: a weighted tsvector with a GIN index, pgvector.

SQLite keeps its FTS5 table from 0001; this revision changes nothing there.

On PostgreSQL:

* ``papers.tsv``: a generated ``tsvector`` (``english``): title weight A, abstract B, author
  names C; GIN index. Maintained by PostgreSQL itself, so the storage hooks have nothing to do.
* ``papers.author_names``: a trigram GIN index (``pg_trgm``, a trusted extension) for the
  case-insensitive substring filter ``author:``, when the extension can be created.
* ``embeddings.embedding``: a ``vector`` column (no fixed dimension: models differ) beside the
  portable ``bytea`` copy, when the ``vector`` extension exists or can be created. The HNSW index
  is per model and dimension (``vector(dim)`` expression index), created at first write.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TSV = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(abstract, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(author_names, '')), 'C')"
)


def _try_extension(name: str) -> bool:
    """Create extension ``name`` if allowed; a failure (no privilege, not installed) is no error."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": name}).first():
        return True
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}
    ).first()
    if not available:
        return False
    nested = bind.begin_nested()
    try:
        bind.execute(sa.text(f'CREATE EXTENSION IF NOT EXISTS "{name}"'))
    except sa.exc.DBAPIError:
        nested.rollback()
        return False
    nested.commit()
    return True


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE papers ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({TSV}) STORED")
    op.execute("CREATE INDEX ix_papers_tsv ON papers USING gin (tsv)")
    op.execute("CREATE INDEX ix_papers_upvotes ON papers ((coalesce(upvotes, 0)) DESC, pk DESC)")
    op.execute(
        "CREATE INDEX ix_papers_published_key ON papers "
        "((coalesce(published, first_seen)) DESC, pk DESC)"
    )
    if _try_extension("pg_trgm"):
        op.execute(
            "CREATE INDEX ix_papers_author_names_trgm ON papers "
            "USING gin (lower(author_names) gin_trgm_ops)"
        )
    if _try_extension("vector"):
        op.execute("ALTER TABLE embeddings ADD COLUMN embedding vector")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE embeddings DROP COLUMN IF EXISTS embedding")
    op.execute("DROP INDEX IF EXISTS ix_papers_author_names_trgm")
    op.execute("DROP INDEX IF EXISTS ix_papers_published_key")
    op.execute("DROP INDEX IF EXISTS ix_papers_upvotes")
    op.execute("DROP INDEX IF EXISTS ix_papers_tsv")
    op.execute("ALTER TABLE papers DROP COLUMN tsv")

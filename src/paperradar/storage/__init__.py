"""Storage backends behind one protocol; ``open_storage(url)`` picks one by URL scheme."""

from __future__ import annotations

from paperradar.errors import ConfigError
from paperradar.storage.base import Cursor, Job, KeywordHit, PaperFilter, SourceState, Storage

__all__ = ["Cursor", "Job", "KeywordHit", "PaperFilter", "SourceState", "Storage", "open_storage"]


def open_storage(url: str) -> Storage:
    """Open (creating and migrating as needed) the database at ``url``."""
    if url.startswith("sqlite"):
        from paperradar.storage.sqlite import SqliteStorage

        return SqliteStorage(url)
    if url.startswith(("postgresql", "postgres")):
        try:
            from paperradar.storage.postgres import PostgresStorage
        except ImportError as exc:
            raise ConfigError(f"PostgreSQL support is not installed: {exc}") from exc
        storage: Storage = PostgresStorage(url)
        return storage
    raise ConfigError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )

"""The exceptions paperradar raises. Each message says what was wrong, where, and what to do."""

from __future__ import annotations


class PaperradarError(Exception):
    """Base class of every error paperradar raises on purpose."""


class InvalidQuery(PaperradarError):
    """A search query that cannot be parsed. ``position`` is the 0-based offset of the problem."""

    def __init__(
        self, message: str, position: int | None = None, query: str = "", *, field: str = "q"
    ) -> None:
        self.position = position
        self.query = query
        self.field = field  # the request parameter at fault (the query, or e.g. its cursor)
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"invalid query{where}: {message}")
        self.reason = message


class InvalidId(PaperradarError):
    """A string that is not a paper id we can recognise."""


class NotFound(PaperradarError):
    """A paper, subscription or other object that does not exist."""


class SourceError(PaperradarError):
    """A source could not be fetched or parsed as a whole (network, HTTP status, bad file)."""

    def __init__(self, message: str, *, source: str = "", location: str = "") -> None:
        self.source = source
        self.location = location
        self.reason = message
        prefix = ": ".join(p for p in (source, location) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class StorageError(PaperradarError):
    """The database could not be opened, migrated or written."""


class ConfigError(PaperradarError):
    """A setting has a value we cannot use."""


class FeatureUnavailable(PaperradarError):
    """A capability asked for is not available here (optional dependency, model, mode)."""

"""How errors reach a client: one table from exception to HTTP status and error code.

The JSON API answers every error with ``{"error": {"code": ..., "message": ...}}``; HTML pages
render the same message in a page. Nothing here knows how the error is rendered.
"""

from __future__ import annotations

from typing import Any

from paperradar.digest.schedule import InvalidSubscription
from paperradar.digest.smtp import TemporaryFailure
from paperradar.digest.tokens import InvalidToken
from paperradar.errors import (
    ConfigError,
    FeatureUnavailable,
    InvalidId,
    InvalidQuery,
    NotFound,
    PaperradarError,
    StorageError,
)

__all__ = ["ERROR_STATUS", "BadParameter", "SubscriptionsUnavailable", "error_body", "status_of"]


class BadParameter(PaperradarError):
    """A request parameter the web layer cannot use; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class SubscriptionsUnavailable(FeatureUnavailable):
    """Subscribing is not wired into this engine yet."""


# Most specific first; the first class in a raised exception's MRO found here wins.
ERROR_STATUS: dict[type[Exception], tuple[int, str]] = {
    BadParameter: (400, "invalid_parameter"),
    InvalidToken: (400, "invalid_token"),
    InvalidSubscription: (400, "invalid_subscription"),
    TemporaryFailure: (503, "mail_unavailable"),
    InvalidQuery: (400, "invalid_query"),
    InvalidId: (400, "invalid_id"),
    NotFound: (404, "not_found"),
    SubscriptionsUnavailable: (501, "subscriptions_unavailable"),
    FeatureUnavailable: (501, "unavailable"),
    StorageError: (503, "storage_unavailable"),
    ConfigError: (500, "config_error"),
    PaperradarError: (500, "error"),
}


def status_of(exc: Exception) -> tuple[int, str]:
    for klass in type(exc).__mro__:
        if klass in ERROR_STATUS:
            return ERROR_STATUS[klass]
    return 500, "internal_error"


def error_body(code: str, message: str, **more: Any) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"error": {"code": code, "message": message, **more}}

"""Timestamp parsing for source formats. Every function returns a tz-aware UTC datetime or None.

Sources write dates as ISO-8601 (``2024-05-27T07:54:25.329Z``, ``2026-09-25T00:00:00-04:00``),
RFC-2822 (``Mon, 2 Apr 2007 19:18:42 GMT``) or bare dates (``2008-11-26``, taken as UTC midnight).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

__all__ = ["parse_iso_utc", "parse_rfc2822_utc", "parse_timestamp"]

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_iso_utc(text: str | None) -> datetime | None:
    """ISO-8601 date or datetime; naive values are taken as UTC. None when unparseable."""
    if not text or not isinstance(text, str):
        return None
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_rfc2822_utc(text: str | None) -> datetime | None:
    """RFC-2822 date as arXiv writes it; a fast path for ``Mon, 2 Apr 2007 19:18:42 GMT``."""
    if not text or not isinstance(text, str):
        return None
    parts = text.split()
    if len(parts) == 6 and parts[5] in ("GMT", "UTC", "+0000"):
        month = _MONTHS.get(parts[2])
        hms = parts[4].split(":")
        if month is not None and len(hms) == 3:
            try:
                return datetime(
                    int(parts[3]),
                    month,
                    int(parts[1]),
                    int(hms[0]),
                    int(hms[1]),
                    int(hms[2]),
                    tzinfo=UTC,
                )
            except ValueError:
                return None
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_timestamp(text: str | None) -> datetime | None:
    """ISO-8601 or RFC-2822, whichever parses."""
    return parse_iso_utc(text) or parse_rfc2822_utc(text)

"""When a subscriber's digest is due, in their own time zone (``zoneinfo``), and which period
it belongs to. A period is the unit of exactly-once delivery: a local date (``2026-12-01``) for
daily digests, an ISO week (``2026-W49``, sent on Mondays) for weekly ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paperradar.errors import PaperradarError

__all__ = ["FREQUENCIES", "InvalidSubscription", "check_timezone", "due_period", "period_length"]

FREQUENCIES = ("daily", "weekly")


class InvalidSubscription(PaperradarError):
    """A subscription request or preference that cannot be used (address, time zone, hour…)."""


def check_timezone(name: str) -> str:
    """``name`` when it is an IANA time zone (``Europe/Berlin``), else a clear error."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSubscription(
            f"unknown time zone {name!r}: use an IANA name like Europe/Berlin or UTC"
        ) from exc
    return name


def period_length(frequency: str) -> timedelta:
    return timedelta(days=7) if frequency == "weekly" else timedelta(days=1)


def due_period(
    at: datetime, *, frequency: str, send_hour: int, timezone: str, weekends: bool
) -> str | None:
    """The period whose digest is due at ``at`` (aware), or None when nothing is due yet.

    Daily: due from ``send_hour`` local time until the end of the local day (a run that comes
    late still sends that day's digest; a run the next day sends the next day's). Skipped on
    Saturday and Sunday when ``weekends`` is off. Weekly: due from Monday ``send_hour`` local
    time until the end of that ISO week. Local hours that do not exist (spring forward) are
    reached at the first instant after them; hours that happen twice (fall back) send once,
    because the period is the same local date.
    """
    local = at.astimezone(ZoneInfo(timezone))
    if frequency == "weekly":
        if local.weekday() == 0 and local.hour < send_hour:
            return None
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if not weekends and local.weekday() >= 5:
        return None
    if local.hour < send_hour:
        return None
    return local.date().isoformat()

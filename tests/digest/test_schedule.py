"""When digests are due: the subscriber's time zone, DST edges, weekends, daily vs weekly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paperradar.digest.schedule import check_timezone, due_period
from paperradar.errors import PaperradarError


def due(at: datetime, **kw: object) -> str | None:
    opts: dict[str, object] = {
        "frequency": "daily",
        "send_hour": 7,
        "timezone": "UTC",
        "weekends": True,
    } | kw
    return due_period(at, **opts)  # type: ignore[arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_due_from_the_local_send_hour_until_the_end_of_the_local_day() -> None:
    # New York is UTC-4 in June: 07:00 local is 11:00 UTC.
    ny = {"timezone": "America/New_York"}
    assert due(utc(2026, 6, 10, 10, 59), **ny) is None
    assert due(utc(2026, 6, 10, 11, 0), **ny) == "2026-06-10"
    assert due(utc(2026, 6, 11, 3, 59), **ny) == "2026-06-10"  # 23:59 local, still that day
    assert due(utc(2026, 6, 11, 4, 0), **ny) is None  # local midnight: the 11th, before 07:00


def test_spring_forward_gap_still_sends_once() -> None:
    # Europe/Berlin 2026-03-29: 02:00 local jumps to 03:00 (01:00 UTC). A 02:00 send hour does
    # not exist that day; it is reached at 03:00 local.
    be = {"timezone": "Europe/Berlin", "send_hour": 2}
    assert due(utc(2026, 3, 29, 0, 59), **be) is None  # 01:59 CET
    assert due(utc(2026, 3, 29, 1, 0), **be) == "2026-03-29"  # 03:00 CEST
    assert due(utc(2026, 3, 30, 0, 0), **be) == "2026-03-30"  # the next day, 02:00 CEST


def test_fall_back_repeated_hour_is_one_period() -> None:
    # Europe/Berlin 2026-10-25: 02:00-03:00 local happens twice (00:00 and 01:00 UTC).
    be = {"timezone": "Europe/Berlin", "send_hour": 2}
    first, second = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)
    assert due(first, **be) == due(second, **be) == "2026-10-25"
    # The UTC offset changed but the local day still begins at local midnight.
    assert due(utc(2026, 10, 24, 23, 30), **be) is None  # 01:30 CEST


def test_weekends_off_skips_saturday_and_sunday_locally() -> None:
    # Friday 2026-06-12 20:00 UTC is Saturday 06:00 in Sydney.
    syd = {"timezone": "Australia/Sydney", "send_hour": 6, "weekends": False}
    assert due(utc(2026, 6, 12, 20, 0), **syd) is None
    assert due(utc(2026, 6, 14, 20, 0), **syd) == "2026-06-15"  # Monday
    assert due(utc(2026, 6, 12, 20, 0), **(syd | {"weekends": True})) == "2026-06-13"


def test_weekly_is_one_period_per_iso_week_from_monday() -> None:
    wk = {"frequency": "weekly", "send_hour": 8}
    monday = utc(2026, 6, 8, 7, 59)
    assert due(monday, **wk) is None
    periods = {due(monday + timedelta(hours=1, days=d), **wk) for d in range(7)}
    assert periods == {"2026-W24"}
    assert due(utc(2026, 6, 15, 8, 0), **wk) == "2026-W25"


def test_unknown_time_zone_is_a_clear_error() -> None:
    assert check_timezone("Asia/Kolkata") == "Asia/Kolkata"
    with pytest.raises(PaperradarError, match="IANA"):
        check_timezone("Europe/Atlantis")

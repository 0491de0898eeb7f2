"""Calendar windows of the daily listing: a day, an ISO week or a month, and their neighbours."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

__all__ = ["Window", "empty_reason", "window_for"]

Span = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in UTC days, with the anchors of the windows before and after."""

    span: Span
    start: date
    end: date  # exclusive

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def end_dt(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    @property
    def previous(self) -> date:
        return window_for(self.span, self.start - timedelta(days=1)).start

    @property
    def next(self) -> date:
        return self.end

    @property
    def label(self) -> str:
        if self.span == "day":
            return f"{self.start:%A, %d %B %Y}"
        if self.span == "week":
            last = self.end - timedelta(days=1)
            year, week, _ = self.start.isocalendar()
            return f"Week {week}, {year} ({self.start:%d %b} – {last:%d %b})"
        return f"{self.start:%B %Y}"

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end


def window_for(span: Span, day: date) -> Window:
    if span == "day":
        return Window("day", day, day + timedelta(days=1))
    if span == "week":
        monday = day - timedelta(days=day.weekday())
        return Window("week", monday, monday + timedelta(days=7))
    first = day.replace(day=1)
    days = calendar.monthrange(day.year, day.month)[1]
    return Window("month", first, first + timedelta(days=days))


def empty_reason(window: Window, newest: date | None, today: date, category: str = "") -> str:
    """Why a window has no papers, in words a reader can act on."""
    scope = f" in {category}" if category else ""
    if window.start > today:
        return "This date is in the future: nothing has been announced yet."
    if newest is not None and window.start > newest:
        return (
            f"Nothing has been collected{scope} for this date yet: "
            f"the newest paper is from {newest:%d %B %Y}."
        )
    if window.span == "day" and window.start.weekday() >= 5:
        return (
            f"No papers{scope} on {window.start:%A}s: arXiv makes no announcements "
            "on weekends. Try Friday or Monday."
        )
    if category:
        return f"No papers in {category} were published in this period."
    return (
        "No papers were announced in this period (a holiday, or no source was collected "
        "for it). Try the previous day."
    )

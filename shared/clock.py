"""Time as a service sees it: one injectable clock type for routes, handlers and jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware. The runtime carries one; tests inject their own."""


def system_clock() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar date of ``moment`` in an IANA time zone (a programme's 'today')."""
    return moment.astimezone(ZoneInfo(timezone)).date()

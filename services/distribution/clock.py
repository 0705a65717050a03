"""Time as the service sees it: an injectable clock and the programme's local date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware. Tests inject their own."""


def system_clock() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar date of ``moment`` in the programme's time zone."""
    return moment.astimezone(ZoneInfo(timezone)).date()

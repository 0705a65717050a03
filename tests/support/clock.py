"""The one fake clock of the tests: a `shared.clock.Clock` that moves only when told to."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


class FakeClock:
    """Returns the same aware datetime until a test moves it with ``advance`` or ``set``.

    Without a start it begins at the current second (UTC); tests that depend on the calendar
    pass their own start.
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = _aware(now or datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by ``delta`` and/or ``timedelta(**parts)``; returns the new time."""
        self.now += (delta or timedelta()) + timedelta(**parts)
        return self.now

    def set(self, now: datetime) -> None:
        self.now = _aware(now)

    @property
    def today(self) -> date:
        """The UTC date of the current time."""
        return self.now.date()


def _aware(moment: datetime) -> datetime:
    assert moment.tzinfo is not None, "a clock tells aware time"
    return moment

"""What the routes, handlers and scheduler share: the service's settings and its clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property

from services.referral.settings import ReferralSettings
from shared.settings import load_settings

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware. Tests inject their own."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class ReferralContext:
    """Settings (read from the environment on first use unless given) and the clock."""

    def __init__(self, settings: ReferralSettings | None = None, clock: Clock = system_clock):
        self._given = settings
        self.clock = clock

    @cached_property
    def settings(self) -> ReferralSettings:
        return self._given or load_settings("referral", ReferralSettings)

    def now(self) -> datetime:
        return self.clock()

"""Backoff with jitter and quiet hours by time zone: pure rules."""

import random
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.schedule import backoff_seconds, quiet_until

CHISINAU = ZoneInfo("Europe/Chisinau")


@given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=2**32))
def test_backoff_doubles_up_to_the_maximum_with_jitter_in_the_upper_half(
    attempt: int, seed: int
) -> None:
    delay = backoff_seconds(attempt, initial=10, maximum=600, rng=random.Random(seed))
    ceiling = min(600, 10 * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_jitter_spreads_replicas() -> None:
    delays = {backoff_seconds(4, initial=10, maximum=600, rng=random.Random(s)) for s in range(20)}
    assert len(delays) == 20


def test_quiet_hours_wrap_past_midnight_in_the_sites_zone() -> None:
    start, end = time(21, 0), time(8, 0)
    # 19:30 UTC in January is 21:30 in Chișinău (UTC+2): quiet until 08:00 local = 06:00 UTC
    evening = datetime(2026, 1, 15, 19, 30, tzinfo=UTC)
    assert quiet_until(evening, CHISINAU, start, end) == datetime(2026, 1, 16, 6, 0, tzinfo=UTC)
    # 03:00 UTC is 05:00 local: quiet until 06:00 UTC the same day
    night = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)
    assert quiet_until(night, CHISINAU, start, end) == datetime(2026, 1, 16, 6, 0, tzinfo=UTC)
    # 06:00 UTC is 08:00 local: no longer quiet; 18:59 UTC is 20:59 local: not yet quiet
    assert quiet_until(datetime(2026, 1, 16, 6, 0, tzinfo=UTC), CHISINAU, start, end) is None
    assert quiet_until(datetime(2026, 1, 16, 18, 59, tzinfo=UTC), CHISINAU, start, end) is None


def test_quiet_hours_follow_summer_time() -> None:
    # July: Chișinău is UTC+3, so 18:30 UTC is 21:30 local and quiet until 05:00 UTC
    summer = datetime(2026, 7, 1, 18, 30, tzinfo=UTC)
    ends = quiet_until(summer, CHISINAU, time(21, 0), time(8, 0))
    assert ends == datetime(2026, 7, 2, 5, 0, tzinfo=UTC)


def test_same_start_and_end_means_no_quiet_hours() -> None:
    assert quiet_until(datetime(2026, 1, 1, tzinfo=UTC), CHISINAU, time(8), time(8)) is None


def test_a_daytime_window_does_not_wrap() -> None:
    noon = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)  # 13:00 local
    ends = quiet_until(noon, CHISINAU, time(12, 0), time(14, 0))
    assert ends == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

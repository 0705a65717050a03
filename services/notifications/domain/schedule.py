"""When to try again: exponential backoff with jitter, and beneficiaries' quiet hours."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def backoff_seconds(
    attempt: int, *, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Delay after failed attempt ``attempt`` (1-based): the ceiling doubles each time up to
    ``maximum``; the delay is drawn uniformly from [ceiling / 2, ceiling] ("equal jitter"),
    so replicas retrying the same outage spread out but never retry sooner than half."""
    ceiling = min(maximum, initial * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """The end of the quiet period ``now`` falls in (local ``start`` to ``end``, which may wrap
    past midnight), as an aware UTC datetime; None when ``now`` is not in quiet hours."""
    if start == end:
        return None
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    wraps = start > end
    inside = (moment >= start or moment < end) if wraps else (start <= moment < end)
    if not inside:
        return None
    end_day = local.date()
    if wraps and moment >= start:
        end_day += timedelta(days=1)
    # Wall-clock end in the zone; fold=0 picks the first of an ambiguous (DST) time.
    ends = datetime.combine(end_day, end, tzinfo=zone)
    return ends.astimezone(UTC)

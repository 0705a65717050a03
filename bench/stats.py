"""Percentiles and rates: the arithmetic every scenario reports with."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MS = 1000.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), interpolating linearly between the closest ranks
    (numpy's default method); None when there are no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1 or q == 0:
        return ordered[0]
    position = q / 100 * (len(ordered) - 1)
    lower = int(position)
    fraction = position - lower
    if fraction == 0 or lower + 1 >= len(ordered):
        return ordered[lower]
    return ordered[lower] + (ordered[lower + 1] - ordered[lower]) * fraction


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in milliseconds."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(latencies_seconds: Sequence[float]) -> LatencySummary:
    """Percentiles (ms) of latencies given in seconds."""
    if not latencies_seconds:
        return LatencySummary(0, None, None, None, None, None)

    def ms(q: float) -> float:
        value = percentile(latencies_seconds, q)
        assert value is not None
        return round(value * MS, 2)

    return LatencySummary(
        count=len(latencies_seconds),
        p50_ms=ms(50),
        p95_ms=ms(95),
        p99_ms=ms(99),
        max_ms=round(max(latencies_seconds) * MS, 2),
        mean_ms=round(statistics.fmean(latencies_seconds) * MS, 2),
    )


def rate(count: int, seconds: float) -> float:
    """Events per second (0 for an empty window)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(value: float | None, ceiling: float | None) -> float | None:
    """``value / ceiling`` rounded to 3 places; None when either is missing or zero."""
    if value is None or not ceiling:
        return None
    return round(value / ceiling, 3)


def steady_rate(samples: Sequence[tuple[float, int]]) -> float | None:
    """Least-squares slope of (time s, cumulative count) samples: the sustained rate, which a
    slow start (a consumer re-joining its group) or a stall at the end does not distort as a
    first/last difference would. Needs at least two samples with distinct times."""
    if len(samples) < 2:
        return None
    times = [t for t, _ in samples]
    counts = [float(c) for _, c in samples]
    try:
        slope, _ = statistics.linear_regression(times, counts)
    except statistics.StatisticsError:
        return None
    return round(slope, 1)

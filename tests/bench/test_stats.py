"""Percentiles, rates and the phase window: the arithmetic every reported figure rests on."""

from __future__ import annotations

import pytest

from bench.context import summarize_phase
from bench.loadgen import HttpPhaseResult
from bench.stats import percentile, rate, ratio, steady_rate, summarize


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0


def test_percentiles_ignore_input_order_and_handle_edges() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_p99_of_a_long_tail_is_the_tail() -> None:
    fast = [0.010] * 980
    slow = [1.0] * 20
    summary = summarize(fast + slow)
    assert summary.p50_ms == 10.0
    assert summary.p95_ms == 10.0
    assert summary.p99_ms == 1000.0  # 2 % slow answers: p99 is one of them
    assert summary.max_ms == 1000.0
    assert summary.count == 1000


def test_summary_of_nothing_has_no_percentiles() -> None:
    summary = summarize([])
    assert summary.count == 0
    assert summary.p99_ms is None


def test_rates_and_ratios() -> None:
    assert rate(500, 10.0) == 50.0
    assert rate(5, 0.0) == 0.0
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None
    assert ratio(50.0, 0.0) is None


def test_steady_rate_is_the_slope_not_the_average_with_a_slow_start() -> None:
    # Nothing for 2 s (a consumer re-joining), then 100 events/s.
    samples = [(t / 2, max(0, int((t / 2 - 2) * 100))) for t in range(4, 21)]
    assert steady_rate(samples) == pytest.approx(100.0, rel=0.01)
    assert steady_rate([(1.0, 5)]) is None


def _result(
    samples: list[tuple[float, float, float, int]], ran_out: bool = False
) -> HttpPhaseResult:
    return HttpPhaseResult(samples=samples, ran_out_of_bodies=ran_out)


def test_phase_window_excludes_warm_up_and_counts_completions_inside() -> None:
    samples = [
        (0.5, 0.0, 0.1, 201),  # warm-up: not counted
        (1.0, 0.0, 0.2, 201),
        (1.5, 0.0, 0.2, 201),
        (2.0, 0.0, 0.3, 409),  # an error inside the window
        (2.9, 0.0, 0.5, 201),  # started inside, completed after the window: no throughput
    ]
    summary = summarize_phase(_result(samples), warmup=1.0, duration=2.0)
    assert summary.requests == 4
    assert summary.ok == 3
    assert summary.errors == 1
    assert summary.rate == 1.0  # two completions in a 2 s window
    assert summary.latency.count == 3


def test_a_phase_that_ran_out_of_bodies_is_rated_over_the_time_it_ran() -> None:
    samples = [(1.0 + i * 0.1, 0.0, 0.1, 201) for i in range(10)]  # ends at 2.0 s
    summary = summarize_phase(_result(samples, ran_out=True), warmup=1.0, duration=10.0)
    assert summary.window_seconds == pytest.approx(1.0)
    assert summary.rate == 10.0
    assert summary.ran_out_of_bodies

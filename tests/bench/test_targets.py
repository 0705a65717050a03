"""Targets are judged met, missed or not measured from a run's metrics."""

from __future__ import annotations

from bench.targets import TARGETS, judge


def test_each_target_is_met_missed_or_not_measured() -> None:
    outcomes = {o.target.key: o for o in judge({
        "intake.best_rate": 612.0,
        "intake.best_p99_ms": 251.0,
        "distribution.oversell_violations": 0.0,
        "rss.max_peak_mb": 200.0,
    })}  # fmt: skip
    assert outcomes["intake_rate"].met is True
    assert outcomes["intake_p99"].met is False  # one millisecond over is over
    assert outcomes["oversell"].met is True
    assert outcomes["service_rss"].met is True  # "<= 200 MB" includes 200
    assert outcomes["dedup_p99"].met is None
    assert outcomes["dedup_p99"].measured is None


def test_every_target_of_the_issue_is_there_once() -> None:
    keys = [t.key for t in TARGETS]
    assert len(keys) == len(set(keys)) == 9

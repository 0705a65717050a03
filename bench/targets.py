"""The targets of issue 9 and how each one is judged from a run's measurements."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

AT_LEAST = ">="
AT_MOST = "<="
_COMPARE: dict[str, Callable[[float, float], bool]] = {AT_LEAST: operator.ge, AT_MOST: operator.le}


@dataclass(frozen=True)
class Target:
    """One target: ``metric`` (a key in the run's flat metrics) compared with ``threshold``."""

    key: str
    description: str
    metric: str
    comparison: str
    threshold: float
    unit: str


TARGETS = (
    Target(
        "intake_rate",
        "Intake >= 500 households/s",
        "intake.best_rate",
        AT_LEAST,
        500,
        "households/s",
    ),
    Target(
        "intake_p99",
        "Intake p99 <= 250 ms (at the level with the best rate)",
        "intake.best_p99_ms",
        AT_MOST,
        250,
        "ms",
    ),
    Target(
        "dedup_p99",
        "Duplicate check p99 <= 25 ms at 1,000,000 individuals",
        "dedup.preloaded_check_p99_ms",
        AT_MOST,
        25,
        "ms",
    ),
    Target(
        "dedup_intake_share",
        "Intake at 1,000,000 individuals >= 80% of the empty-database rate",
        "dedup.intake_share",
        AT_LEAST,
        0.80,
        "share",
    ),
    Target(
        "distribution_rate",
        "Distributions >= 300/s under contention (50 operators, one warehouse x SKU)",
        "distribution.rate",
        AT_LEAST,
        300,
        "distributions/s",
    ),
    Target(
        "oversell",
        "Zero oversell (ledger sums == balances, nothing negative, sell-out exact)",
        "distribution.oversell_violations",
        AT_MOST,
        0,
        "violations",
    ),
    Target(
        "notification_p99",
        "Registration -> notification p99 <= 1 s at 50 households/s",
        "event_flow.notification_p99_ms",
        AT_MOST,
        1000,
        "ms",
    ),
    Target(
        "consumer_rate",
        "Each consumer >= 2,000 events/s (the slowest one)",
        "recovery.slowest_consumer_rate",
        AT_LEAST,
        2000,
        "events/s",
    ),
    Target(
        "service_rss",
        "Each service <= 200 MB RSS under load (the largest peak)",
        "rss.max_peak_mb",
        AT_MOST,
        200,
        "MB",
    ),
)


@dataclass(frozen=True)
class Outcome:
    target: Target
    measured: float | None
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.target.key,
            "description": self.target.description,
            "threshold": self.target.threshold,
            "comparison": self.target.comparison,
            "unit": self.target.unit,
            "measured": self.measured,
            "met": self.met,
        }


def judge(metrics: Mapping[str, float | None]) -> list[Outcome]:
    """Each target met, missed, or not measured (its metric absent or None)."""
    outcomes = []
    for target in TARGETS:
        measured = metrics.get(target.metric)
        met = None if measured is None else _COMPARE[target.comparison](measured, target.threshold)
        outcomes.append(Outcome(target, measured, met))
    return outcomes

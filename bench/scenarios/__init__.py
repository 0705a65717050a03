"""The scenarios of issue 9, each ``run(context) -> ScenarioResult``."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import RunContext
from bench.results_model import ScenarioResult
from bench.scenarios import ceilings, dedup, distribution, event_flow, intake, recovery

Scenario = Callable[[RunContext], ScenarioResult]

SCENARIO_FUNCTIONS: dict[str, Scenario] = {
    "ceilings": ceilings.run,
    "intake": intake.run,
    "distribution": distribution.run,
    "event_flow": event_flow.run,
    "dedup": dedup.run,
    "recovery": recovery.run,
}

"""How big and how long each scenario runs: the full run and the ``--quick`` smoke check."""

from __future__ import annotations

from dataclasses import dataclass

SCENARIOS = ("ceilings", "intake", "distribution", "event_flow", "dedup", "recovery")
"""Every scenario, in the order a run executes them (ceilings first, on a quiet machine;
dedup's million-person preload after the flows that do not need it; recovery last, as it
leaves a backlog behind)."""


@dataclass(frozen=True)
class Sizes:
    """Sizes and durations of one mode; every loop is bounded by a count and a time."""

    mode: str
    warmup_seconds: float
    level_seconds: float
    intake_concurrency: tuple[int, ...]
    relay_drain_seconds: float
    preload_individuals: int
    preload_chunk: int
    dedup_probes: int
    dedup_intake_concurrency: int
    operators: int
    distribution_seconds: float
    households_per_second: int
    sellout_stock: int
    sellout_extra_requests: int
    flow_rates: tuple[float, ...]  # the first is judged against the target
    flow_seconds: float
    flow_settle_seconds: float
    backlog_events: int
    drain_seconds_per_consumer: float
    settle_seconds: float
    ceiling_events: int
    ceiling_seconds: float
    request_timeout_seconds: float = 30.0


FULL = Sizes(
    mode="full",
    warmup_seconds=3.0,
    level_seconds=15.0,
    intake_concurrency=(8, 32, 64),
    relay_drain_seconds=30.0,
    preload_individuals=1_000_000,
    preload_chunk=25_000,
    dedup_probes=400,
    dedup_intake_concurrency=32,
    operators=50,
    distribution_seconds=15.0,
    households_per_second=100,
    sellout_stock=200,
    sellout_extra_requests=100,
    flow_rates=(50.0,),
    flow_seconds=20.0,
    flow_settle_seconds=45.0,
    backlog_events=100_000,
    drain_seconds_per_consumer=50.0,
    settle_seconds=45.0,
    ceiling_events=100_000,
    ceiling_seconds=10.0,
)

QUICK = Sizes(
    mode="quick",
    warmup_seconds=0.5,
    level_seconds=1.5,
    intake_concurrency=(8, 32, 64),
    relay_drain_seconds=2.0,
    preload_individuals=10_000,
    preload_chunk=10_000,
    dedup_probes=60,
    dedup_intake_concurrency=32,
    operators=50,
    distribution_seconds=2.0,
    households_per_second=80,
    sellout_stock=40,
    sellout_extra_requests=20,
    flow_rates=(50.0,),
    flow_seconds=3.0,
    flow_settle_seconds=8.0,
    backlog_events=5_000,
    drain_seconds_per_consumer=4.0,
    settle_seconds=2.0,
    ceiling_events=3_000,
    ceiling_seconds=1.0,
)

POOL_PER_SERVICE = 20
"""A service's most PostgreSQL connections (2 x ServiceSettings.db_pool_size 10, see shared.db):
the PostgreSQL ceilings use as many, so the comparison is like for like."""


def sizes_for(quick: bool) -> Sizes:
    return QUICK if quick else FULL

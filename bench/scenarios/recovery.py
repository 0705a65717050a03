"""Scenario 5: a consumer catching up after a 100,000-event backlog, one consumer at a time.

The three services that consume registration's households topic are frozen (SIGSTOP: to
Kafka they are gone), 100,000 ``HouseholdRegistered`` events in the real envelope format are
produced straight to the topic with Haven's producer settings, then each service is thawed
alone while the others stay frozen, and its consumer group's committed offset is followed.
The steady drain rate (least squares over the samples after the first progress, so the
group re-join is not counted against it) is each consumer's sustained events/s; the catch-up
time includes the re-join. A consumer that has not caught up within the time bound is frozen
again and its total catch-up time is projected from its rate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench import kafka_load
from bench.context import RunContext
from bench.results_model import Row, ScenarioResult
from bench.stats import steady_rate
from shared.events.catalog import HOUSEHOLDS

CONSUMERS = ("distribution", "referral", "notifications")
POLL_SECONDS = 0.5
BACKLOG_SEED = 1  # the ceiling's seed: the same events, built once


@dataclass
class Drain:
    service: str
    backlog: int
    drained: int
    rejoin_seconds: float | None
    steady_rate: float | None
    seconds: float
    caught_up: bool
    usage: str = ""

    @property
    def catch_up_seconds(self) -> float | None:
        if self.caught_up:
            return self.seconds
        if self.steady_rate and self.rejoin_seconds is not None:
            return self.rejoin_seconds + self.backlog / self.steady_rate
        return None


async def _drain(context: RunContext, service: str, bound: float) -> Drain:
    group = f"haven-{service}"
    async with kafka_load.GroupProgress(context.stack.kafka_bootstrap, HOUSEHOLDS.name) as p:
        end = await p.end()
        start = await p.committed(group)
        backlog = end - start
        context.stack.thaw(service)
        began = time.monotonic()
        samples: list[tuple[float, int]] = []
        rejoin: float | None = None
        drained = 0
        try:
            while drained < backlog and time.monotonic() - began < bound:
                await asyncio.sleep(POLL_SECONDS)
                drained = await p.committed(group) - start
                elapsed = time.monotonic() - began
                if drained and rejoin is None:
                    rejoin = elapsed
                if rejoin is not None:
                    samples.append((elapsed, drained))
        finally:
            context.stack.freeze(service)
        return Drain(
            service=service,
            backlog=backlog,
            drained=drained,
            rejoin_seconds=None if rejoin is None else round(rejoin, 1),
            steady_rate=steady_rate(samples),
            seconds=round(time.monotonic() - began, 1),
            caught_up=drained >= backlog,
        )


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    stack = context.stack
    result = ScenarioResult(
        "recovery", f"Recovery: each consumer after a {sizes.backlog_events:,}-event backlog"
    )
    for service in CONSUMERS:
        stack.freeze(service)
    drains: list[Drain] = []
    try:
        context.console.print(f"  producing {sizes.backlog_events:,} events to {HOUSEHOLDS.name} …")
        produced = context.loadgen(
            kafka_load.produce,
            stack.kafka_bootstrap,
            HOUSEHOLDS.name,
            sizes.backlog_events,
            seed=BACKLOG_SEED,
            today=context.today,
            timeout=900,
        )
        for service in CONSUMERS:
            context.console.print(
                f"  {service} alone, up to {sizes.drain_seconds_per_consumer:.0f} s …"
            )
            usage: list[str] = []
            with (
                context.profiling(service, "recovery"),
                context.cpu_per_operation(service, usage) as done,
            ):
                measuring = _drain(context, service, sizes.drain_seconds_per_consumer)
                drains.append(asyncio.run(measuring))
                done.append(drains[-1].drained)
            drains[-1].usage = "; ".join(usage)
    finally:
        for service in CONSUMERS:
            stack.thaw(service)

    for drain in drains:
        when = drain.catch_up_seconds
        state = (
            f"caught up in {when:.0f} s"
            if drain.caught_up and when is not None
            else f"{drain.drained:,}/{drain.backlog:,} in {drain.seconds:.0f} s; "
            + (f"all in ~{when:.0f} s (projected)" if when else "no progress")
        )
        result.rows.append(
            Row(
                f"{drain.service} catching up",
                drain.steady_rate,
                "events/s",
                requests=drain.backlog,
                ceiling="kafka_consume",
                ceiling_ratio=context.ceiling_ratio("kafka_consume", drain.steady_rate),
                note=f"re-joined after {drain.rejoin_seconds} s; {state}; {drain.usage}",
            )
        )
    rates = [d.steady_rate for d in drains]
    result.metrics = {f"recovery.{d.service}_rate": d.steady_rate for d in drains}
    result.metrics["recovery.slowest_consumer_rate"] = (
        min(r for r in rates if r is not None) if all(r is not None for r in rates) else 0.0
    )
    result.details = {
        "produced": {"events": produced.events, "rate": produced.rate},
        "drains": [d.__dict__ | {"catch_up_seconds": d.catch_up_seconds} for d in drains],
        "method": "SIGSTOP/SIGCONT; committed offsets of haven-<service> polled every 0.5 s",
    }
    return result

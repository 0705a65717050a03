"""Scenario 1: households per second through ``POST /v1/households`` at 8, 32 and 64 desks.

Each request is a new synthetic household (3.5 members on average, names in Cyrillic and
Latin, documents, needs) with an ``Idempotency-Key``, as a field device sends it; the
duplicate check runs on every one. After the last level, the registration outbox's backlog
is watched while the relay drains it: that is the relay's publishing rate.
"""

from __future__ import annotations

import time

from bench.context import RunContext, fetchval, settle, summarize_phase
from bench.loadgen import HouseholdBodies, HttpPhase, run_http_phase
from bench.results_model import Row, ScenarioResult
from bench.stats import steady_rate

BODIES_PER_SECOND = 600  # far more than this machine takes (~50/s): bodies never run out
POLL_SECONDS = 0.5


def household_phase(
    context: RunContext,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    rate_per_second: float | None = None,
    reachable: bool = False,
    referable: bool = False,
    count: int | None = None,
) -> HttpPhase:
    """Registrations of new households; ``count`` bodies, by default more than can be sent."""
    per_second = rate_per_second or BODIES_PER_SECOND
    return HttpPhase(
        base_url=context.url("registration"),
        path="/v1/households",
        token=context.tokens.field_staff,
        bodies=HouseholdBodies(
            seed=context.next_seed(),
            count=count or int(per_second * (seconds + warmup)) + 1,
            today=context.today,
            reachable=reachable,
            referable=referable,
        ),
        concurrency=concurrency,
        duration_seconds=seconds,
        warmup_seconds=warmup,
        timeout_seconds=context.sizes.request_timeout_seconds,
        rate_per_second=rate_per_second,
        idempotency_keys=True,
        keep_fields=("id", "status"),
    )


def outbox_backlog(context: RunContext) -> int:
    return int(fetchval(context.db("registration"), "SELECT count(*) FROM outbox") or 0)


def watch_relay(context: RunContext, seconds: float) -> tuple[float | None, int, int]:
    """Follow the registration outbox until empty or ``seconds`` pass: (rows/s, start, end)."""
    began = time.monotonic()
    first = outbox_backlog(context)
    samples: list[tuple[float, int]] = [(0.0, 0)]
    left = first
    while left and time.monotonic() - began < seconds:
        time.sleep(POLL_SECONDS)
        left = outbox_backlog(context)
        samples.append((time.monotonic() - began, first - left))
    return (steady_rate(samples) if first else None), first, left


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult("intake", "Intake: POST /v1/households (dedup on)")
    levels = {}
    for index, concurrency in enumerate(sizes.intake_concurrency):
        if index:  # each level starts with the previous level's events handled downstream
            left = settle(context, sizes.settle_seconds)
            if left:
                result.notes.append(f"c={concurrency} started with work still queued: {left}")
        phase = household_phase(
            context,
            concurrency=concurrency,
            seconds=sizes.level_seconds,
            warmup=sizes.warmup_seconds,
        )
        context.console.print(f"  {concurrency} concurrent desks for {sizes.level_seconds:.0f} s …")
        usage: list[str] = []
        with (
            context.profiling("registration", f"intake-c{concurrency}"),
            context.cpu_per_operation("registration", usage) as done,
        ):
            answer = context.loadgen(run_http_phase, phase, timeout=sizes.level_seconds + 600)
            done.append(len(answer.kept))
        summary = summarize_phase(answer, warmup=sizes.warmup_seconds, duration=sizes.level_seconds)
        levels[concurrency] = summary
        context.shared.setdefault("registered", []).extend(answer.kept)
        pending = sum(1 for kept in answer.kept if kept.get("status") == "pending_review")
        backlog = outbox_backlog(context)
        result.rows.append(
            Row(
                f"concurrency {concurrency}",
                summary.rate,
                "households/s",
                summary.latency,
                summary.requests,
                summary.errors,
                "pg_registration",
                context.ceiling_ratio("pg_registration", summary.rate),
                note="; ".join(
                    [*usage, f"outbox backlog after: {backlog}", f"pending review: {pending}"]
                ),
            )
        )
        result.details[f"c{concurrency}"] = {
            "problems": summary.problems,
            "outbox_backlog_after": backlog,
            "pending_review": pending,
            "registered": len(answer.kept),
            "ran_out_of_bodies": summary.ran_out_of_bodies,
        }
    relay_rate, backlog_start, backlog_end = watch_relay(context, sizes.relay_drain_seconds)
    result.rows.append(
        Row(
            "outbox relay draining the backlog",
            relay_rate,
            "rows/s",
            ceiling="kafka_produce",
            ceiling_ratio=context.ceiling_ratio("kafka_produce", relay_rate),
            note=f"backlog {backlog_start} -> {backlog_end} rows",
        )
    )
    best = max(levels, key=lambda c: levels[c].rate)
    result.metrics = {
        "intake.best_rate": levels[best].rate,
        "intake.best_p99_ms": levels[best].latency.p99_ms,
        "intake.relay_rows_per_second": relay_rate,
    }
    for concurrency, summary in levels.items():
        result.metrics[f"intake.rate_c{concurrency}"] = summary.rate
        result.metrics[f"intake.p99_ms_c{concurrency}"] = summary.latency.p99_ms
    result.details["best_concurrency"] = best
    return result

"""Scenario 2: the duplicate check and intake, before and after a million people are loaded.

1. Time registration's candidate search directly against its database (``bench.dedup_probe``)
   and run intake at 32 desks, on the database as it is (empty but for earlier scenarios).
2. Bulk-load 1,000,000 individuals with COPY (``bench.preload``), names drawn from the same
   frequency lists, so popular names crowd the same blocking keys as they would in the field.
3. Time the same probes again and run intake again: the check's p99 and the intake rate as a
   share of the first.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, NamedTuple

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import dedup_probe, preload
from bench.context import RunContext, fetchval, settle, summarize_phase
from bench.loadgen import run_http_phase
from bench.results_model import Row, ScenarioResult
from bench.scenarios.intake import household_phase
from bench.stats import summarize

PRELOAD_SEED = 424_242
PROBE_TIMEOUT_SECONDS = 600.0


def members(context: RunContext) -> int:
    return int(fetchval(context.db("registration"), "SELECT count(*) FROM household_member") or 0)


def _probe(context: RunContext, plan: dedup_probe.ProbePlan) -> dedup_probe.ProbeResult:
    return context.loadgen(dedup_probe.probe, plan, timeout=PROBE_TIMEOUT_SECONDS)


def _intake(context: RunContext) -> tuple[Row, float]:
    sizes = context.sizes
    concurrency = sizes.dedup_intake_concurrency
    phase = household_phase(
        context, concurrency=concurrency, seconds=sizes.level_seconds, warmup=sizes.warmup_seconds
    )
    answer = context.loadgen(run_http_phase, phase, timeout=sizes.level_seconds + 600)
    summary = summarize_phase(answer, warmup=sizes.warmup_seconds, duration=sizes.level_seconds)
    pending = sum(1 for kept in answer.kept if kept.get("status") == "pending_review")
    row = Row(
        f"intake, {concurrency} desks",
        summary.rate,
        "households/s",
        summary.latency,
        summary.requests,
        summary.errors,
        "pg_registration",
        context.ceiling_ratio("pg_registration", summary.rate),
        note=f"pending review: {pending}",
    )
    return row, summary.rate


def _settle(context: RunContext, result: ScenarioResult) -> None:
    left = settle(context, context.sizes.settle_seconds)
    if left:
        result.notes.append(f"a measurement started with work still queued: {left}")


def _check_row(label: str, result: dedup_probe.ProbeResult) -> Row:
    latencies = result.planted_latencies + result.new_latencies
    return Row(
        label,
        None,
        "",
        summarize(latencies),
        len(latencies),
        0,
        note=f"re-registrations found {result.planted_found}/{len(result.planted_latencies)}, "
        f"new households flagged {result.new_flagged}/{len(result.new_latencies)}, "
        f"look-ups that hit the candidate limit: {result.lookups_at_limit}",
    )


class Measured(NamedTuple):
    """The duplicate check and intake at one size of the register."""

    people: int
    check: dedup_probe.ProbeResult
    intake: Row
    intake_rate: float


def _measure(context: RunContext, result: ScenarioResult, plan: dedup_probe.ProbePlan) -> Measured:
    """Count the people registered, let the services settle, then probe and run intake."""
    people = members(context)
    _settle(context, result)
    context.console.print(f"  duplicate check and intake with {people:,} people registered …")
    check = _probe(context, plan)
    intake_row, intake_rate = _intake(context)
    return Measured(people, check, intake_row, intake_rate)


def _preload(context: RunContext) -> preload.PreloadResult:
    """COPY the preload's individuals into registration's database, with a progress bar."""
    sizes = context.sizes
    columns = (
        TextColumn("  COPY individuals"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=context.console) as progress:
        task = progress.add_task("preload", total=sizes.preload_individuals)
        return asyncio.run(
            preload.preload_async(
                context.db("registration"),
                context.executor,
                individuals=sizes.preload_individuals,
                chunk_size=sizes.preload_chunk,
                seed=PRELOAD_SEED,
                today=context.today,
                advance=lambda count: progress.advance(task, count),
            )
        )


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(
        "dedup", f"Dedup at scale: {sizes.preload_individuals:,} individuals bulk-loaded"
    )
    plan = dedup_probe.ProbePlan(
        database_url=context.stack.database_url("haven_registration"),
        preload_seed=PRELOAD_SEED,
        probe_seed=context.next_seed(),
        probes=sizes.dedup_probes,
        preload_chunk=sizes.preload_chunk,
        today=context.today,
    )
    before = _measure(context, result, plan)
    loaded = _preload(context)
    after = _measure(context, result, plan)
    share = round(after.intake_rate / before.intake_rate, 3) if before.intake_rate else None

    before.intake.label += f", {before.people:,} people"
    after.intake.label += f", {after.people:,} people"
    after.intake.note += f"; {share:.0%} of the rate before the load" if share else ""
    result.rows += [
        _check_row(f"duplicate check, {before.people:,} people", before.check),
        _check_row(f"duplicate check, {after.people:,} people", after.check),
        before.intake,
        after.intake,
        _preload_row(loaded),
    ]
    result.metrics = _metrics(before, after, share)
    result.details = _details(before, after, loaded)
    return result


def _preload_row(loaded: preload.PreloadResult) -> Row:
    return Row(
        "bulk load (COPY, keys by the service's functions)",
        loaded.rate,
        "individuals/s",
        note=f"{loaded.individuals:,} people in {loaded.households:,} households, "
        f"{loaded.total_seconds:.0f} s (COPY {loaded.copy_seconds:.0f} s, "
        f"vacuum+analyse {loaded.vacuum_seconds:.0f} s)",
    )


def _metrics(before: Measured, after: Measured, share: float | None) -> dict[str, float | None]:
    empty_summary = summarize(before.check.planted_latencies + before.check.new_latencies)
    loaded_summary = summarize(after.check.planted_latencies + after.check.new_latencies)
    return {
        "dedup.empty_check_p99_ms": empty_summary.p99_ms,
        "dedup.preloaded_check_p99_ms": loaded_summary.p99_ms,
        "dedup.intake_share": share,
        "dedup.empty_intake_rate": before.intake_rate,
        "dedup.preloaded_intake_rate": after.intake_rate,
    }


def _details(before: Measured, after: Measured, loaded: preload.PreloadResult) -> dict[str, Any]:
    check = after.check
    return {
        "people_before": before.people,
        "people_after": after.people,
        "preload": dataclasses.asdict(loaded),
        "planted_found": check.planted_found,
        "planted": len(check.planted_latencies),
        "new_flagged": check.new_flagged,
        "new": len(check.new_latencies),
        "check_by_kind_after": {
            "re_registrations": summarize(check.planted_latencies).as_dict(),
            "new_households": summarize(check.new_latencies).as_dict(),
        },
    }

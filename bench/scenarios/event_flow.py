"""Scenario 4: from ``POST /v1/households`` to a delivered SMS and to a created referral.

Households arrive at a fixed rate (open loop: one every 20 ms at 50/s, whatever the answers),
each with a phone, contact consent, referral-sharing consent and a medical need, so every one
of them must produce a registration confirmation (notifications, through the outbox, Kafka,
the contacts topic and the sender) and an automatic referral (referral service). The latency
of each is the notification's ``delivered_at`` or the referral's ``created_at`` minus the wall
clock when the request was sent (all processes share this machine's clock).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from bench.context import PhaseSummary, RunContext, fetch, settle, summarize_phase
from bench.loadgen import run_http_phase
from bench.results_model import Row, ScenarioResult
from bench.scenarios.intake import household_phase
from bench.stats import LatencySummary, summarize

POLL_SECONDS = 1.0
DELIVERED = """
SELECT household_id, delivered_at FROM notification
WHERE event_type = 'HouseholdRegistered' AND status = 'delivered'
  AND household_id = ANY($1::uuid[])
"""
REFERRED = """
SELECT household_id, min(created_at) FROM referral
WHERE household_id = ANY($1::uuid[]) GROUP BY household_id
"""


def _arrivals(context: RunContext, ids: list[uuid.UUID]) -> tuple[dict[str, datetime], ...]:
    delivered = {str(r[0]): r[1] for r in fetch(context.db("notifications"), DELIVERED, ids)}
    referred = {str(r[0]): r[1] for r in fetch(context.db("referral"), REFERRED, ids)}
    return delivered, referred


def _flow(context: RunContext, rate: float, result: ScenarioResult) -> dict[str, float | None]:
    """One open-loop run at ``rate``; adds its rows and notes, returns its metrics."""
    http, sent_at, usage = _register(context, rate)
    ids = [uuid.UUID(household_id) for household_id in sent_at]
    delivered, referred = _wait_for_arrivals(context, ids)
    # A message still missing when the wait ends took at least until now: that lower bound
    # stands in for its latency, so a lost message can only make the percentiles worse.
    gave_up = time.time()
    to_notification = summarize(_latencies(sent_at, delivered, gave_up))
    to_referral = summarize(_latencies(sent_at, referred, gave_up))
    at = f"at {rate:.0f}/s"
    result.rows += [
        Row(
            f"POST /v1/households {at} (open loop)",
            http.rate,
            "households/s",
            http.latency,
            http.requests,
            http.errors,
            note="; ".join(usage),
        ),
        _arrival_row(
            f"registration -> delivered confirmation SMS, {at}",
            rate,
            to_notification,
            ids,
            delivered,
            "delivered",
        ),
        _arrival_row(
            f"registration -> created referral, {at}", rate, to_referral, ids, referred, "referred"
        ),
    ]
    for what, arrived in (("confirmations", delivered), ("referrals", referred)):
        if len(arrived) < len(ids):
            result.notes.append(
                f"{at}: {len(ids) - len(arrived)} {what} had not arrived "
                f"{context.sizes.flow_settle_seconds:.0f} s after the last request; their "
                "latency counts as the time waited (a lower bound)"
            )
    result.details[at] = {"problems": http.problems, "households": len(ids)}
    return {
        "notification_p99_ms": to_notification.p99_ms,
        "referral_p99_ms": to_referral.p99_ms,
        "http_p99_ms": http.latency.p99_ms,
    }


def _register(context: RunContext, rate: float) -> tuple[PhaseSummary, dict[str, float], list[str]]:
    """Send households at ``rate`` for the flow's seconds: the HTTP summary, when each kept
    household was sent (by id), and registration's CPU per request."""
    sizes = context.sizes
    phase = household_phase(
        context,
        concurrency=0,
        seconds=sizes.flow_seconds,
        warmup=0.0,
        rate_per_second=rate,
        reachable=True,
        referable=True,
    )
    context.console.print(
        f"  {rate:.0f} households/s for {sizes.flow_seconds:.0f} s, then waiting "
        f"up to {sizes.flow_settle_seconds:.0f} s for every SMS and referral …"
    )
    usage: list[str] = []
    with (
        context.profiling("registration", f"event-flow-{rate:.0f}"),
        context.profiling("notifications", f"event-flow-{rate:.0f}"),
        context.cpu_per_operation("registration", usage) as done,
    ):
        answer = context.loadgen(run_http_phase, phase, timeout=sizes.flow_seconds + 600)
        done.append(len(answer.kept))
    http = summarize_phase(answer, warmup=0.0, duration=answer.elapsed_seconds)
    sent_at = {str(kept["id"]): float(kept["sent_at"]) for kept in answer.kept}
    return http, sent_at, usage


def _wait_for_arrivals(
    context: RunContext, ids: list[uuid.UUID]
) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Poll until every household has its SMS and its referral, or the settle time is up."""
    deadline = time.monotonic() + context.sizes.flow_settle_seconds
    delivered, referred = _arrivals(context, ids)
    while (len(delivered) < len(ids) or len(referred) < len(ids)) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        delivered, referred = _arrivals(context, ids)
    return delivered, referred


def _latencies(
    sent_at: dict[str, float], arrived: dict[str, datetime], gave_up: float
) -> list[float]:
    """Seconds from each request to its arrival; ``gave_up`` stands in for a missing one."""
    return [
        arrived[h].timestamp() - sent if h in arrived else gave_up - sent
        for h, sent in sent_at.items()
    ]


def _arrival_row(
    label: str,
    rate: float,
    latency: LatencySummary,
    ids: list[uuid.UUID],
    arrived: dict[str, datetime],
    verb: str,
) -> Row:
    return Row(
        label,
        rate,
        "households/s",
        latency,
        len(ids),
        len(ids) - len(arrived),
        note=f"{len(arrived)}/{len(ids)} {verb}",
    )


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    rates = ", ".join(f"{rate:.0f}" for rate in sizes.flow_rates)
    result = ScenarioResult("event_flow", f"Event flow at {rates} households/s (open loop)")
    # The lower rates first: the target's rate may leave a backlog behind it.
    for rate in sorted(sizes.flow_rates):
        left = settle(context, sizes.settle_seconds)
        if left:
            result.notes.append(f"at {rate:.0f}/s: started with work still queued: {left}")
        measured = _flow(context, rate, result)
        for key, value in measured.items():
            suffix = "" if rate == sizes.flow_rates[0] else f"_at_{rate:.0f}"
            result.metrics[f"event_flow.{key}{suffix}"] = value
    return result

"""Scenario 3: 50 warehouse operators issuing food parcels from one warehouse x SKU at once.

Every request serves a different household that registration announced to distribution (so
entitlements hold and each household is locked by one desk only); all of them queue on the
same stock balance row. Then a **sell-out**: the stock is corrected down to a few hundred
parcels and the operators ask for more than that, so some must be refused. Afterwards the
ledger is audited: sums of entries equal balances, nothing is negative, exactly the stock was
issued, no household was served twice.
"""

from __future__ import annotations

import time
import uuid

from bench.context import (
    FOOD_SKU,
    WAREHOUSE_ID,
    PhaseSummary,
    RunContext,
    fetch,
    fetchval,
    summarize_phase,
)
from bench.loadgen import DistributionBodies, HttpPhase, HttpPhaseResult, run_http_phase
from bench.results_model import Row, ScenarioResult
from bench.scenarios.intake import household_phase

RECEIPT_QUANTITY = 1_000_000
TOP_UP_SECONDS = 120.0
TOP_UP_CONCURRENCY = 32
VIEW_WAIT_SECONDS = 120.0
SELLOUT_BOUND_SECONDS = 120.0
CREATED = 201

UNSERVED_HOUSEHOLDS = """
SELECT v.household_id FROM household_view v
WHERE v.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM distribution d WHERE d.household_id = v.household_id)
ORDER BY v.household_id
"""
BALANCES_NOT_LEDGER = """
SELECT count(*) FROM stock_balance b
WHERE b.quantity <> (SELECT coalesce(sum(l.quantity), 0) FROM stock_ledger l
                     WHERE l.warehouse_id = b.warehouse_id AND l.sku = b.sku
                       AND l.batch IS NOT DISTINCT FROM b.batch)
"""
LEDGER_WITHOUT_BALANCE = """
SELECT count(*) FROM (SELECT DISTINCT warehouse_id, sku, batch FROM stock_ledger) l
WHERE NOT EXISTS (SELECT 1 FROM stock_balance b WHERE b.warehouse_id = l.warehouse_id
                  AND b.sku = l.sku AND b.batch IS NOT DISTINCT FROM l.batch)
"""
NEGATIVE_BALANCES = "SELECT count(*) FROM stock_balance WHERE quantity < 0"
ON_HAND = (
    "SELECT coalesce(sum(quantity), 0) FROM stock_balance WHERE warehouse_id = $1 AND sku = $2"
)
ISSUED = """
SELECT coalesce(-sum(quantity), 0) FROM stock_ledger
WHERE kind = 'issue' AND warehouse_id = $1 AND sku = $2
"""
SERVED_TWICE = """
SELECT count(*) FROM (SELECT household_id FROM distribution WHERE status = 'recorded'
                      AND household_id IS NOT NULL GROUP BY household_id HAVING count(*) > 1) t
"""


def unserved(context: RunContext) -> list[str]:
    return [str(r[0]) for r in fetch(context.db("distribution"), UNSERVED_HOUSEHOLDS)]


def ensure_households(context: RunContext, needed: int) -> list[str]:
    """Households distribution knows and has not served; registers more when short."""
    available = unserved(context)
    deficit = needed - len(available)
    if deficit <= 0:
        return available
    context.console.print(f"  registering {deficit} more households for the operators …")
    phase = household_phase(
        context, concurrency=TOP_UP_CONCURRENCY, seconds=TOP_UP_SECONDS, warmup=0.0, count=deficit
    )
    context.loadgen(run_http_phase, phase, timeout=TOP_UP_SECONDS + 300)
    deadline = time.monotonic() + VIEW_WAIT_SECONDS
    while time.monotonic() < deadline:
        available = unserved(context)
        if len(available) >= needed:
            break
        time.sleep(1.0)
    return available


def operators_phase(
    context: RunContext, households: list[str], *, seconds: float, warmup: float
) -> HttpPhase:
    return HttpPhase(
        base_url=context.url("distribution"),
        path="/v1/distributions",
        token=context.tokens.operator,
        bodies=DistributionBodies(tuple(households), WAREHOUSE_ID, FOOD_SKU),
        concurrency=context.sizes.operators,
        duration_seconds=seconds,
        warmup_seconds=warmup,
        timeout_seconds=context.sizes.request_timeout_seconds,
    )


def stock_request(context: RunContext, path: str, body: dict[str, object]) -> None:
    response = context.post(
        "distribution", f"/v1/warehouses/{WAREHOUSE_ID}/{path}", body, token=context.tokens.operator
    )
    if response.status_code != CREATED:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(
        "distribution", f"Distribution: {sizes.operators} operators on one warehouse x SKU"
    )
    sellout_requests = sizes.sellout_stock + sizes.sellout_extra_requests
    main_share, sellout_share = _households_for_both_phases(context, sellout_requests)
    stock_request(
        context,
        "receipts",
        {
            "lines": [{"sku": FOOD_SKU, "quantity": RECEIPT_QUANTITY}],
            "reference": f"bench-{uuid.uuid4().hex[:12]}",
        },
    )
    summary, served_main = _operators_on_one_row(context, main_share, result)

    # Sell-out: correct the stock down, then ask for more than is left.
    sellout = _sellout(context, sellout_share)
    served_sellout = sum(1 for s in sellout.samples if s[3] == CREATED)
    refused = sellout.problems.get("409 insufficient-stock", 0)
    other_failures = len(sellout.samples) - served_sellout - refused
    checks = _audit(context, served_main, served_sellout)
    violations = sum(abs(value) for value in checks.values())
    result.rows.append(
        Row(
            f"sell-out: {sizes.sellout_stock} in stock, {sellout_requests} requests",
            None,
            "",
            None,
            len(sellout.samples),
            other_failures,
            note=f"issued {served_sellout}, refused insufficient-stock {refused}, "
            f"oversell checks violated: {violations}",
        )
    )
    result.metrics = {
        "distribution.rate": summary.rate,
        "distribution.p99_ms": summary.latency.p99_ms,
        "distribution.oversell_violations": float(violations),
    }
    result.details = {
        "problems": summary.problems,
        "sellout_problems": sellout.problems,
        "checks": checks,
        "households_set_aside": len(main_share),
    }
    return result


def _households_for_both_phases(
    context: RunContext, sellout_requests: int
) -> tuple[list[str], list[str]]:
    """Unserved households for the operators' window, and the last ones for the sell-out."""
    sizes = context.sizes
    window = sizes.warmup_seconds + sizes.distribution_seconds
    main_households = int(sizes.households_per_second * window)
    households = ensure_households(context, main_households + sellout_requests)
    if len(households) < sellout_requests * 2:
        raise RuntimeError(f"only {len(households)} households known to distribution")
    return households[:-sellout_requests], households[-sellout_requests:]


def _operators_on_one_row(
    context: RunContext, households: list[str], result: ScenarioResult
) -> tuple[PhaseSummary, int]:
    """All operators on the one warehouse x SKU; adds the row, returns the summary and the
    number of distributions recorded."""
    sizes = context.sizes
    context.console.print(
        f"  {sizes.operators} operators for {sizes.distribution_seconds:.0f} s "
        f"({len(households)} households set aside) …"
    )
    usage: list[str] = []
    with (
        context.profiling("distribution", "distribution"),
        context.cpu_per_operation("distribution", usage) as done,
    ):
        answer = context.loadgen(
            run_http_phase,
            operators_phase(
                context, households, seconds=sizes.distribution_seconds, warmup=sizes.warmup_seconds
            ),
            timeout=sizes.distribution_seconds + 600,
        )
        done.append(sum(1 for sample in answer.samples if sample[3] == CREATED))
    summary = summarize_phase(
        answer, warmup=sizes.warmup_seconds, duration=sizes.distribution_seconds
    )
    result.rows.append(
        Row(
            f"{sizes.operators} operators, one warehouse x SKU",
            summary.rate,
            "distributions/s",
            summary.latency,
            summary.requests,
            summary.errors,
            "pg_hot_row",
            context.ceiling_ratio("pg_hot_row", summary.rate),
            note="; ".join(
                [*usage, *(["ran out of households"] if summary.ran_out_of_bodies else [])]
            ),
        )
    )
    return summary, done[0]


def _sellout(context: RunContext, households: list[str]) -> HttpPhaseResult:
    """Correct the stock down to the sell-out's size, then let the operators ask for more."""
    on_hand = int(fetchval(context.db("distribution"), ON_HAND, uuid.UUID(WAREHOUSE_ID), FOOD_SKU))
    correction = context.sizes.sellout_stock - on_hand
    if correction:
        stock_request(
            context,
            "adjustments",
            {"lines": [{"sku": FOOD_SKU, "quantity": correction, "reason": "count_correction"}]},
        )
    return context.loadgen(
        run_http_phase,
        operators_phase(context, households, seconds=SELLOUT_BOUND_SECONDS, warmup=0.0),
        timeout=SELLOUT_BOUND_SECONDS + 300,
    )


def _audit(context: RunContext, served_main: int, served_sellout: int) -> dict[str, int]:
    """The ledger's invariants after both phases: every value is 0 when nothing was oversold."""
    database = context.db("distribution")
    warehouse = uuid.UUID(WAREHOUSE_ID)
    return {
        "balances_differing_from_ledger": int(fetchval(database, BALANCES_NOT_LEDGER)),
        "ledger_groups_without_balance": int(fetchval(database, LEDGER_WITHOUT_BALANCE)),
        "negative_balances": int(fetchval(database, NEGATIVE_BALANCES)),
        "on_hand_after_sellout": int(fetchval(database, ON_HAND, warehouse, FOOD_SKU)),
        "issued_minus_served": int(fetchval(database, ISSUED, warehouse, FOOD_SKU))
        - (served_main + served_sellout),
        "sellout_served_minus_stock": served_sellout - context.sizes.sellout_stock,
        "households_served_twice": int(fetchval(database, SERVED_TWICE)),
    }

"""Recording a distribution: give a household items from a warehouse, within its entitlement
and the stock.

One transaction per distribution, in the service-wide lock order: the household's row
(``SELECT ... FOR UPDATE``: two desks serving the same household queue here, and the second
sees what the first gave), then the warehouse's balance rows of the SKUs involved (ordered by
warehouse, SKU, batch). Entitlement and stock are checked against the locked state, so
concurrent requests can neither oversell nor exceed an entitlement.

Idempotency: ``client_ref`` is unique across the service. A re-send of the same request
gets the stored original answer (a replayed ``created`` outcome with the same body); the same
``client_ref`` with a different body is refused with ``client-ref-reused``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution import queries
from services.distribution.domain import entitlements
from services.distribution.domain.catalogue import SERVICE
from services.distribution.domain.distributions.facts import (
    ItemCategoryOf,
    LockedHousehold,
    RequestFacts,
    WarehouseSite,
    request_facts,
)
from services.distribution.domain.errors import (
    ClientRefReused,
    InsufficientStock,
    UnknownItems,
    WarehouseNotFound,
    WarehouseOutOfScope,
)
from services.distribution.domain.households import require_active, visible_household
from services.distribution.domain.policy import PolicyBook
from services.distribution.domain.stock import (
    EVENT_SOURCE,
    Ledger,
    Pick,
    Withdrawal,
    lock_balances,
    plan_withdrawals,
)
from services.distribution.models import (
    Distribution,
    DistributionCreate,
    DistributionLinePublic,
    DistributionPublic,
    DistributionStatus,
    IssuedBatchPublic,
    ItemCategory,
    LedgerKind,
)
from shared import audit
from shared.auth import Principal
from shared.db import run
from shared.events.distribution import DistributedLine, DistributionRecorded
from shared.idempotency import Outcome, OutcomeKind
from shared.outbox import add_event

CHECK_VIOLATION = "23514"

Plan = dict[int, list[Pick]]


@dataclass(frozen=True)
class DistributionOutcome(Outcome[dict[str, Any]]):
    """The answer to a distribution request (its JSON body is stored, so a re-send gets the
    very same answer), and what to count once it committed."""

    issued: tuple[tuple[str, int], ...] = ()
    """A new distribution's units by item category; a replay counts nothing."""
    site_id: str | None = None


def fingerprint(data: DistributionCreate) -> str:
    """The stored request fingerprint of a distribution. Not ``shared.idempotency.fingerprint``:
    that one sorts the keys, and the fingerprints stored so far would stop matching."""
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


# Built once (a distribution runs them all): calls only bind values.
_BY_CLIENT_REF = (
    select(Distribution)
    .where(col(Distribution.client_ref) == sa.bindparam("client_ref"))
    .execution_options(populate_existing=True)
)


@dataclass(frozen=True)
class Decided:
    """A distribution as decided under the locks, before it is written."""

    id: UUID
    data: DistributionCreate
    household_id: UUID
    warehouse: WarehouseSite
    policy_version: str
    categories: dict[str, str]
    plan: Plan
    recorded_by: str
    now: datetime
    today: date
    request_fingerprint: str

    @cached_property
    def body(self) -> dict[str, Any]:
        """The answer's JSON body: stored with the distribution, so a re-send gets it again."""
        return _answer(self)


CLIENT_REF_REUSED = (
    "This client_ref was already used for a different request; use a new client_ref "
    "for a new distribution."
)


async def record(
    *,
    session: AsyncSession,
    principal: Principal,
    data: DistributionCreate,
    policies: PolicyBook,
    now: datetime,
    today: date,
    retry_after_seconds: int,
    window_days: int,
) -> DistributionOutcome:
    """Record a distribution (or replay the original answer to a re-sent request).

    Four statements of ``queries``: lock the household; read everything else the decision
    needs; lock the balance rows; write the distribution, its lines, the stock movements and
    the stored answer. The audit record and the event go through the outbox.
    """
    request_fingerprint = fingerprint(data)
    skus = sorted({line.sku for line in data.lines})
    locked = (
        await run(session, queries.LOCK_HOUSEHOLD, {"household_id": data.household_id})
    ).one_or_none()
    facts = await request_facts(session, data, skus)
    # The same answers, in the same order, as reading each fact on its own would give.
    warehouse = _warehouse(facts, principal, data.warehouse_id)
    if facts.client_ref_taken:  # a re-send, possibly committed while we waited for the lock
        return await _replay_existing(session, data.client_ref, principal, request_fingerprint)
    household = _active_household(locked, data.household_id, principal, retry_after_seconds)
    categories = _known_categories(facts, skus)
    policy = entitlements.policy_in_force(policies, today)
    entitlements.check_lines(
        policy=policy,
        household=household,
        lines=data.lines,
        categories=categories,
        received=facts.received,
        today=today,
        prescriptions=facts.prescriptions,
    )
    distribution_id = uuid.uuid4()
    # Before the warehouse's balance rows are locked: every operator queues on them, so each
    # statement after that lock is time the whole warehouse waits. A refusal below (the
    # stock, or the client_ref taken meanwhile) rolls the audit record back with the rest.
    await _audit(session, principal, distribution_id)
    ledger, plan = await _lock_and_plan(session, principal, data, warehouse, now=now, today=today)
    decided = Decided(
        id=distribution_id,
        data=data,
        household_id=household.household_id,
        warehouse=warehouse,
        policy_version=policy.version,
        categories=categories,
        plan=plan,
        recorded_by=principal.sub,
        now=now,
        today=today,
        request_fingerprint=request_fingerprint,
    )
    if not await _write(session, ledger, decided):
        # The same client_ref was committed meanwhile by a request for another household (a
        # re-send of this very request queues on the household lock and is answered from the
        # facts above): refused, and the transaction (with its audit record) rolls back.
        raise ClientRefReused(CLIENT_REF_REUSED, client_ref=data.client_ref)
    await _announce(session, decided)
    await ledger.announce_low_stock(
        warehouse,
        {sku: ItemCategoryOf(category) for sku, category in categories.items()},
        today=today,
        window_days=window_days,
        levels=facts.levels,
    )
    return DistributionOutcome(
        OutcomeKind.CREATED,
        decided.body,
        issued=tuple((categories[line.sku], line.quantity) for line in data.lines),
        site_id=warehouse.site_id,
    )


# --- the steps of a distribution -----------------------------------------------------------


def _warehouse(facts: RequestFacts, principal: Principal, warehouse_id: UUID) -> WarehouseSite:
    """The request's warehouse, if it exists at one of the caller's sites."""
    if facts.warehouse_site_id is None:
        raise WarehouseNotFound(warehouse_id)
    if not principal.can_access_site(facts.warehouse_site_id):
        raise WarehouseOutOfScope(warehouse_id)
    return WarehouseSite(warehouse_id, facts.warehouse_site_id)


def _active_household(
    locked: Any, household_id: UUID, principal: Principal, retry_after_seconds: int
) -> LockedHousehold:
    """The locked household row, if the caller may serve it and it is active."""
    household = visible_household(
        LockedHousehold(household_id=household_id, **locked._mapping) if locked else None,
        principal=principal,
        household_id=household_id,
        retry_after_seconds=retry_after_seconds,
    )
    require_active(household)
    return household


async def _audit(session: AsyncSession, principal: Principal, distribution_id: UUID) -> None:
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.record",
        resource_type="distribution",
        resource_id=str(distribution_id),
    )


def _known_categories(facts: RequestFacts, skus: list[str]) -> dict[str, str]:
    """The category of every SKU of the request; UnknownItems lists those not in the catalogue."""
    missing = [sku for sku in skus if sku not in facts.categories]
    if missing:
        raise UnknownItems(missing)
    return facts.categories


async def _replay_existing(
    session: AsyncSession, client_ref: str, principal: Principal, request_fingerprint: str
) -> DistributionOutcome:
    result = await session.exec(_BY_CLIENT_REF, params={"client_ref": client_ref})
    existing = result.one_or_none()
    assert existing is not None  # client_refs are never deleted
    return _replay(existing, principal, request_fingerprint)


def _replay(
    existing: Distribution, principal: Principal, request_fingerprint: str
) -> DistributionOutcome:
    if (
        existing.request_fingerprint != request_fingerprint
        or existing.response is None
        or not principal.can_access_site(existing.site_id)
    ):
        raise ClientRefReused(CLIENT_REF_REUSED, client_ref=existing.client_ref)
    return DistributionOutcome(OutcomeKind.CREATED, existing.response, replayed=True)


async def _lock_and_plan(
    session: AsyncSession,
    principal: Principal,
    data: DistributionCreate,
    warehouse: WarehouseSite,
    *,
    now: datetime,
    today: date,
) -> tuple[Ledger, Plan]:
    """Lock the warehouse's balance rows of the request's SKUs and plan each line's picks
    (InsufficientStock or BatchExpired before anything is written)."""
    skus = sorted({line.sku for line in data.lines})
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse.id, sku) for sku in skus]),
        recorded_by=principal.sub,
        now=now,
    )
    plan = plan_withdrawals(
        list(ledger.rows.values()),
        [
            Withdrawal(line_no=i, sku=line.sku, quantity=line.quantity, batch=line.batch)
            for i, line in enumerate(data.lines)
        ],
        today=today,
    )
    return ledger, plan


def _answer(decided: Decided) -> dict[str, Any]:
    data, plan = decided.data, decided.plan
    return DistributionPublic(
        id=decided.id,
        household_id=decided.household_id,
        warehouse_id=decided.warehouse.id,
        site_id=decided.warehouse.site_id,
        client_ref=data.client_ref,
        status=DistributionStatus.RECORDED,
        policy_version=decided.policy_version,
        distributed_at=decided.now,
        distributed_on=decided.today,
        recorded_by=decided.recorded_by,
        lines=[
            DistributionLinePublic(
                sku=line.sku,
                category=ItemCategory(decided.categories[line.sku]),
                quantity=line.quantity,
                batch=line.batch,
                prescription_reference=line.prescription_reference,
                issued=[
                    IssuedBatchPublic(
                        batch=p.row.batch, expires_on=p.row.expires_on, quantity=p.quantity
                    )
                    for p in plan[i]
                ],
            )
            for i, line in enumerate(data.lines)
        ],
    ).model_dump(mode="json")


def _distribution_row(decided: Decided) -> dict[str, Any]:
    """The distribution's and its lines' parameters of ``queries.WRITE_DISTRIBUTION``."""
    data, categories = decided.data, decided.categories
    return {
        "id": decided.id,
        "household_id": decided.household_id,
        "warehouse_id": decided.warehouse.id,
        "site_id": decided.warehouse.site_id,
        "client_ref": data.client_ref,
        "request_fingerprint": decided.request_fingerprint,
        "response": json.dumps(decided.body),
        "status": str(DistributionStatus.RECORDED),
        "policy_version": decided.policy_version,
        "distributed_on": decided.today,
        "line_nos": list(range(len(data.lines))),
        "line_skus": [line.sku for line in data.lines],
        "line_categories": [categories[line.sku] for line in data.lines],
        "line_quantities": [line.quantity for line in data.lines],
        "line_batches": [line.batch for line in data.lines],
        "line_references": [line.prescription_reference for line in data.lines],
    }


async def _write(session: AsyncSession, ledger: Ledger, decided: Decided) -> bool:
    """Write the distribution and the plan's picks (``queries.WRITE_DISTRIBUTION``) and keep
    the ledger's locked rows up to date; False (nothing written) when the client_ref was taken."""
    plan = decided.plan
    picks = [(line_no, pick) for line_no in sorted(plan) for pick in plan[line_no]]
    before = {pick.row.id: pick.row.quantity for _, pick in picks}
    after: dict[int, int] = {}
    balances_after = []
    for _, pick in picks:
        after[pick.row.id] = after.get(pick.row.id, pick.row.quantity) - pick.quantity
        balances_after.append(after[pick.row.id])
    try:
        rows = (
            await run(
                session,
                queries.WRITE_DISTRIBUTION,
                {
                    **_distribution_row(decided),
                    "now": ledger.now,
                    "recorded_by": ledger.recorded_by,
                    "balance_ids": list(after),
                    "changes": [after[row_id] - before[row_id] for row_id in after],
                    "kind": str(LedgerKind.ISSUE),
                    "pick_warehouse_ids": [pick.row.warehouse_id for _, pick in picks],
                    "pick_skus": [pick.row.sku for _, pick in picks],
                    "pick_batches": [pick.row.batch for _, pick in picks],
                    "pick_expiries": [pick.row.expires_on for _, pick in picks],
                    "pick_quantities": [-pick.quantity for _, pick in picks],
                    "pick_balances_after": balances_after,
                    "pick_line_nos": [line_no for line_no, _ in picks],
                },
            )
        ).all()
    except sa_exc.IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != CHECK_VIOLATION:
            raise
        # the balance's CHECK: only reachable through a bug
        raise InsufficientStock(
            "The stock would go below zero in this warehouse.",
            shortfalls=[{"sku": pick.row.sku, "batch": pick.row.batch} for _, pick in picks],
        ) from exc
    if not rows[0].inserted:
        return False
    moved = {row.id: row.quantity for row in rows}
    if moved != after:  # the rows are locked: only a bug could make them differ
        raise RuntimeError(f"stock balances moved under the lock: {moved} != {after}")
    for _, pick in picks:
        pick.row.quantity = after[pick.row.id]
    return True


async def _announce(session: AsyncSession, decided: Decided) -> None:
    """DistributionRecorded through the outbox: one line per batch issued."""
    lines, plan = decided.data.lines, decided.plan
    await add_event(
        session,
        DistributionRecorded(
            distribution_id=decided.id,
            household_id=decided.household_id,
            warehouse_id=decided.warehouse.id,
            site_id=decided.warehouse.site_id,
            lines=tuple(
                DistributedLine(
                    sku=lines[line_no].sku,
                    category=decided.categories[lines[line_no].sku],
                    quantity=pick.quantity,
                    batch=pick.row.batch,
                )
                for line_no in sorted(plan)
                for pick in plan[line_no]
            ),
        ),
        key=str(decided.household_id),
        source=EVENT_SOURCE,
        actor=decided.recorded_by,
    )

"""Distributions: give a household items from a warehouse, within its entitlement and the stock.

One transaction per distribution, in the service-wide lock order: the household's row
(``SELECT ... FOR UPDATE``: two desks serving the same household queue here, and the second
sees what the first gave), then the warehouse's balance rows of the SKUs involved (ordered by
warehouse, SKU, batch). Entitlement and stock are checked against the locked state, so
concurrent requests can neither oversell nor exceed an entitlement.

Idempotency: ``client_ref`` is unique across the service. A re-send of the same request
returns the stored original response (same status and body); the same ``client_ref`` with a
different body is refused with 409 ``client-ref-reused``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain import entitlements
from services.distribution.domain.catalogue import SERVICE, get_warehouse, items_by_sku
from services.distribution.domain.errors import (
    AlreadyVoided,
    ClientRefReused,
    DistributionAnonymised,
    DistributionNotFound,
    DistributionOutOfScope,
)
from services.distribution.domain.households import (
    household_for_command,
    lock_households,
    require_active,
)
from services.distribution.domain.metrics import count_distribution
from services.distribution.domain.policy import PolicyBook
from services.distribution.domain.stock import (
    EVENT_SOURCE,
    Ledger,
    Withdrawal,
    is_expired,
    lock_balances,
    plan_withdrawals,
    reorder_levels,
)
from services.distribution.models import (
    Distribution,
    DistributionCreate,
    DistributionLine,
    DistributionLinePublic,
    DistributionPublic,
    DistributionStatus,
    IssuedBatchPublic,
    ItemCategory,
    LedgerKind,
    Page,
    StockLedgerEntry,
    VoidReason,
)
from shared import audit
from shared.auth import ALL_SITES, Principal, Role
from shared.events.distribution import (
    DistributedLine,
    DistributionRecorded,
    DistributionVoided,
    StockExpired,
)
from shared.outbox import add_event
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor

CREATED = 201
CLIENT_REF_CONSTRAINT = "distribution_client_ref_key"
MAX_HOUSEHOLD_LOCK_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """The HTTP status and JSON body of a distribution request: stored, so a re-send gets the
    very same answer."""

    status: int
    body: dict[str, Any]


def fingerprint(data: DistributionCreate) -> str:
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


async def _by_client_ref(session: AsyncSession, client_ref: str) -> Distribution | None:
    result = await session.exec(
        select(Distribution)
        .where(col(Distribution.client_ref) == client_ref)
        .execution_options(populate_existing=True)
    )
    return result.one_or_none()


def _replay(existing: Distribution, principal: Principal, request_fingerprint: str) -> Outcome:
    if (
        existing.request_fingerprint != request_fingerprint
        or existing.response is None
        or not principal.can_access_site(existing.site_id)
    ):
        raise ClientRefReused(
            "This client_ref was already used for a different request; use a new client_ref "
            "for a new distribution.",
            client_ref=existing.client_ref,
        )
    return Outcome(CREATED, existing.response)


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
) -> Outcome:
    """Record a distribution (or replay the original answer to a re-sent request)."""
    warehouse = await get_warehouse(
        session=session, principal=principal, warehouse_id=data.warehouse_id
    )
    request_fingerprint = fingerprint(data)
    existing = await _by_client_ref(session, data.client_ref)
    if existing is not None:
        return _replay(existing, principal, request_fingerprint)
    household = await household_for_command(
        session=session,
        principal=principal,
        household_id=data.household_id,
        retry_after_seconds=retry_after_seconds,
        lock=True,
    )
    # Another desk may have committed this very request while we waited for the lock.
    existing = await _by_client_ref(session, data.client_ref)
    if existing is not None:
        return _replay(existing, principal, request_fingerprint)
    require_active(household)
    items = await items_by_sku(session=session, skus=[line.sku for line in data.lines])
    policy = entitlements.policy_in_force(policies, today)
    entitlements.check_lines(
        policy=policy,
        household=household,
        lines=data.lines,
        items=items,
        received=await entitlements.received_by(session, household.household_id),
        today=today,
    )
    levels = await reorder_levels(session, warehouse.id, items)
    distribution_id = uuid.uuid4()
    # Everything that does not depend on the stock is written BEFORE the warehouse's balance
    # rows are locked: every operator queues on those rows, so each statement after the lock
    # is time the whole warehouse waits. If the stock then falls short, the transaction rolls
    # all of it back.
    inserted = await session.exec(
        insert(Distribution)
        .values(
            id=distribution_id,
            household_id=household.household_id,
            warehouse_id=warehouse.id,
            site_id=warehouse.site_id,
            client_ref=data.client_ref,
            request_fingerprint=request_fingerprint,
            response=None,  # set below, once the batches are known
            status=DistributionStatus.RECORDED,
            policy_version=policy.version,
            distributed_at=now,
            distributed_on=today,
            recorded_by=principal.sub,
        )
        .on_conflict_do_nothing(constraint=CLIENT_REF_CONSTRAINT)
        .returning(col(Distribution.id))
    )
    if inserted.first() is None:
        # the same client_ref committed meanwhile for another household
        existing = await _by_client_ref(session, data.client_ref)
        assert existing is not None
        return _replay(existing, principal, request_fingerprint)
    await session.exec(
        sa.insert(DistributionLine),
        params=[
            {
                "distribution_id": distribution_id,
                "line_no": i,
                "sku": line.sku,
                "category": items[line.sku].category,
                "quantity": line.quantity,
                "requested_batch": line.batch,
                "prescription_reference": line.prescription_reference,
            }
            for i, line in enumerate(data.lines)
        ],
    )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.record",
        resource_type="distribution",
        resource_id=str(distribution_id),
    )
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse.id, sku) for sku in items]),
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
    response = DistributionPublic(
        id=distribution_id,
        household_id=household.household_id,
        warehouse_id=warehouse.id,
        site_id=warehouse.site_id,
        client_ref=data.client_ref,
        status=DistributionStatus.RECORDED,
        policy_version=policy.version,
        distributed_at=now,
        distributed_on=today,
        recorded_by=principal.sub,
        lines=[
            DistributionLinePublic(
                sku=line.sku,
                category=ItemCategory(items[line.sku].category),
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
    )
    body = response.model_dump(mode="json")
    for line_no in sorted(plan):
        for pick in plan[line_no]:
            await ledger.move(
                pick.row,
                -pick.quantity,
                LedgerKind.ISSUE,
                distribution_id=distribution_id,
                line_no=line_no,
            )
    await session.exec(
        sa.update(Distribution)
        .where(col(Distribution.id) == distribution_id)
        .values(response=body)
        .execution_options(synchronize_session=False)
    )
    await add_event(
        session,
        DistributionRecorded(
            distribution_id=distribution_id,
            household_id=household.household_id,
            warehouse_id=warehouse.id,
            site_id=warehouse.site_id,
            lines=tuple(
                DistributedLine(
                    sku=data.lines[line_no].sku,
                    category=items[data.lines[line_no].sku].category,
                    quantity=pick.quantity,
                    batch=pick.row.batch,
                )
                for line_no in sorted(plan)
                for pick in plan[line_no]
            ),
        ),
        key=str(household.household_id),
        source=EVENT_SOURCE,
        actor=principal.sub,
    )
    await ledger.announce_low_stock(
        warehouse, items, today=today, window_days=window_days, levels=levels
    )
    count_distribution(
        session,
        warehouse.site_id,
        ((items[line.sku].category, line.quantity) for line in data.lines),
    )
    return Outcome(CREATED, body)


async def void(
    *,
    session: AsyncSession,
    principal: Principal,
    distribution_id: UUID,
    reason: VoidReason,
    now: datetime,
    today: date,
) -> DistributionPublic:
    """Reverse a distribution: its stock goes back to the batches it came from (and is written
    off at once if that batch has expired since) and its entitlement use is freed."""
    distribution = await _lock_with_household(session, principal, distribution_id)
    if distribution.status == DistributionStatus.VOIDED:
        raise AlreadyVoided(
            f"Distribution {distribution_id} was already voided.",
            voided_at=distribution.voided_at.isoformat() if distribution.voided_at else None,
        )
    issues = (
        await session.exec(
            select(StockLedgerEntry)
            .where(
                col(StockLedgerEntry.distribution_id) == distribution_id,
                col(StockLedgerEntry.kind) == LedgerKind.ISSUE,
            )
            .order_by(col(StockLedgerEntry.id))
        )
    ).all()
    warehouse_id = distribution.warehouse_id
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse_id, e.sku) for e in issues]),
        recorded_by=principal.sub,
        now=now,
    )
    expired = []
    for entry in issues:
        row = ledger.row(warehouse_id, entry.sku, entry.batch)
        assert row is not None  # balance rows are never deleted
        await ledger.move(
            row,
            -entry.quantity,
            LedgerKind.VOID_REVERSAL,
            distribution_id=distribution_id,
            line_no=entry.line_no,
            reference=reason,
        )
        if is_expired(row.expires_on, today):
            await ledger.move(row, entry.quantity, LedgerKind.EXPIRY_WRITE_OFF)
            expired.append((entry, row))
    distribution.status = DistributionStatus.VOIDED
    distribution.voided_at = now
    distribution.voided_by = principal.sub
    distribution.void_reason = reason
    await session.flush()
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.void",
        resource_type="distribution",
        resource_id=str(distribution_id),
        reason=reason,
    )
    assert distribution.household_id is not None
    await add_event(
        session,
        DistributionVoided(
            distribution_id=distribution_id,
            household_id=distribution.household_id,
            warehouse_id=warehouse_id,
            site_id=distribution.site_id,
            reason_code=reason,
        ),
        key=str(distribution.household_id),
        source=EVENT_SOURCE,
        actor=principal.sub,
    )
    categories = await _categories(session, [e.sku for e, _ in expired])
    for entry, row in expired:
        assert row.batch is not None and row.expires_on is not None
        await add_event(
            session,
            StockExpired(
                warehouse_id=warehouse_id,
                site_id=distribution.site_id,
                sku=entry.sku,
                category=categories[entry.sku],
                batch=row.batch,
                quantity=-entry.quantity,
                expired_on=row.expires_on,
            ),
            key=str(warehouse_id),
            source=EVENT_SOURCE,
            actor=principal.sub,
        )
    return (await render(session, [distribution]))[0]


async def _categories(session: AsyncSession, skus: list[str]) -> dict[str, str]:
    if not skus:
        return {}
    items = await items_by_sku(session=session, skus=skus)
    return {sku: item.category for sku, item in items.items()}


async def _lock_with_household(
    session: AsyncSession, principal: Principal, distribution_id: UUID
) -> Distribution:
    """Lock the distribution's household, then the distribution (the service's lock order).
    A merge may move the distribution to another household meanwhile: then try again."""
    for _ in range(MAX_HOUSEHOLD_LOCK_ATTEMPTS):
        distribution = await session.get(Distribution, distribution_id)
        if distribution is None:
            raise DistributionNotFound(distribution_id)
        if not principal.can_access_site(distribution.site_id):
            raise DistributionOutOfScope(distribution_id)
        household_id = distribution.household_id
        if household_id is None:
            raise DistributionAnonymised(
                "The household of this distribution was erased; it can no longer be voided. "
                "Correct the stock with an adjustment."
            )
        await lock_households(session, household_id)
        distribution = (
            await session.exec(
                select(Distribution)
                .where(col(Distribution.id) == distribution_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        if distribution.household_id == household_id:
            return distribution
    raise RuntimeError("the distribution kept moving between households")


async def render(
    session: AsyncSession, distributions: list[Distribution]
) -> list[DistributionPublic]:
    """Distributions as they stand now, with their lines and the batches issued."""
    ids = [d.id for d in distributions]
    if not ids:
        return []
    lines = (
        await session.exec(
            select(DistributionLine)
            .where(col(DistributionLine.distribution_id).in_(ids))
            .order_by(col(DistributionLine.distribution_id), col(DistributionLine.line_no))
        )
    ).all()
    issues = (
        await session.exec(
            select(StockLedgerEntry)
            .where(
                col(StockLedgerEntry.distribution_id).in_(ids),
                col(StockLedgerEntry.kind) == LedgerKind.ISSUE,
            )
            .order_by(col(StockLedgerEntry.id))
        )
    ).all()
    lines_of: dict[UUID, list[DistributionLine]] = defaultdict(list)
    for line in lines:
        lines_of[line.distribution_id].append(line)
    issued: dict[tuple[UUID, int | None], list[IssuedBatchPublic]] = defaultdict(list)
    for entry in issues:
        assert entry.distribution_id is not None
        issued[(entry.distribution_id, entry.line_no)].append(
            IssuedBatchPublic(
                batch=entry.batch, expires_on=entry.expires_on, quantity=-entry.quantity
            )
        )
    return [
        DistributionPublic(
            id=d.id,
            household_id=d.household_id,
            warehouse_id=d.warehouse_id,
            site_id=d.site_id,
            client_ref=d.client_ref,
            status=DistributionStatus(d.status),
            policy_version=d.policy_version,
            distributed_at=d.distributed_at,
            distributed_on=d.distributed_on,
            recorded_by=d.recorded_by,
            lines=[
                DistributionLinePublic(
                    sku=line.sku,
                    category=ItemCategory(line.category),
                    quantity=line.quantity,
                    batch=line.requested_batch,
                    prescription_reference=line.prescription_reference,
                    issued=issued[(d.id, line.line_no)],
                )
                for line in lines_of[d.id]
            ],
            voided_at=d.voided_at,
            void_reason=VoidReason(d.void_reason) if d.void_reason else None,
        )
        for d in distributions
    ]


def site_scope(principal: Principal) -> list[str] | None:
    """The sites a principal may read, or None for every site."""
    if Role.ADMIN in principal.roles or ALL_SITES in principal.sites:
        return None
    return sorted(principal.sites)


async def get_distribution(
    *, session: AsyncSession, principal: Principal, distribution_id: UUID
) -> DistributionPublic:
    distribution = await session.get(Distribution, distribution_id)
    if distribution is None:
        raise DistributionNotFound(distribution_id)
    if not principal.can_access_site(distribution.site_id):
        raise DistributionOutOfScope(distribution_id)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.read",
        resource_type="distribution",
        resource_id=str(distribution_id),
    )
    return (await render(session, [distribution]))[0]


async def list_distributions(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID | None,
    warehouse_id: UUID | None,
    from_date: date | None,
    to_date: date | None,
    cursor: str | None,
    limit: int,
) -> Page[DistributionPublic]:
    """Newest first, within the caller's sites; an audited read (household ids)."""
    query = select(Distribution)
    sites = site_scope(principal)
    if sites is not None:
        query = query.where(col(Distribution.site_id).in_(sites))
    if household_id is not None:
        query = query.where(col(Distribution.household_id) == household_id)
    if warehouse_id is not None:
        query = query.where(col(Distribution.warehouse_id) == warehouse_id)
    if from_date is not None:
        query = query.where(col(Distribution.distributed_on) >= from_date)
    if to_date is not None:
        query = query.where(col(Distribution.distributed_on) <= to_date)
    if cursor:
        last_at, last_id = decode_cursor(cursor, types=(str, str))
        try:
            after = (datetime.fromisoformat(last_at), UUID(last_id))
        except ValueError as exc:
            raise InvalidCursor("The cursor is not one this service returned.") from exc
        query = query.where(
            sa.tuple_(col(Distribution.distributed_at), col(Distribution.id)) < sa.tuple_(*after)
        )
    rows = (
        await session.exec(
            query.order_by(
                col(Distribution.distributed_at).desc(),
                col(Distribution.id).desc(),
            ).limit(limit + 1)
        )
    ).all()
    page = list(rows[:limit])
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distributions.read",
        resource_type="household" if household_id else "distribution",
        resource_id=str(household_id) if household_id else None,
    )
    next_cursor = (
        encode_cursor([page[-1].distributed_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return Page[DistributionPublic](items=await render(session, page), next_cursor=next_cursor)

"""Voiding a distribution: its stock goes back and its entitlement use is freed (audited)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE, items_by_sku
from services.distribution.domain.distributions.reads import render
from services.distribution.domain.errors import (
    AlreadyVoided,
    DistributionAnonymised,
    DistributionNotFound,
    DistributionOutOfScope,
)
from services.distribution.domain.households import lock_households
from services.distribution.domain.stock import (
    EVENT_SOURCE,
    BalanceRow,
    Ledger,
    is_expired,
    lock_balances,
)
from services.distribution.models import (
    Distribution,
    DistributionPublic,
    DistributionStatus,
    LedgerKind,
    StockLedgerEntry,
    VoidReason,
)
from shared import audit
from shared.auth import Principal
from shared.events.distribution import DistributionVoided, StockExpired
from shared.outbox import add_event

MAX_HOUSEHOLD_LOCK_ATTEMPTS = 5


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
    expired = await _return_stock(session, principal, distribution, issues, reason, now, today)
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
    await _announce(session, principal, distribution, reason, expired)
    return (await render(session, [distribution]))[0]


Expired = list[tuple[StockLedgerEntry, BalanceRow]]


async def _return_stock(
    session: AsyncSession,
    principal: Principal,
    distribution: Distribution,
    issues: Sequence[StockLedgerEntry],
    reason: VoidReason,
    now: datetime,
    today: date,
) -> Expired:
    """Reverse each issue into the batch it came from; a batch expired since is written off
    at once. The issues whose batch was written off are returned."""
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
            distribution_id=distribution.id,
            line_no=entry.line_no,
            reference=reason,
        )
        if is_expired(row.expires_on, today):
            await ledger.move(row, entry.quantity, LedgerKind.EXPIRY_WRITE_OFF)
            expired.append((entry, row))
    return expired


async def _announce(
    session: AsyncSession,
    principal: Principal,
    distribution: Distribution,
    reason: VoidReason,
    expired: Expired,
) -> None:
    """DistributionVoided, and StockExpired for each batch written off on the way."""
    distribution_id, warehouse_id = distribution.id, distribution.warehouse_id
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

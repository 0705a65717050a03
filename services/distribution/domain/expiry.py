"""The daily expiry write-off: expired batches leave the balances with a StockExpired event.

Restart-safe: the run inserts its ``expiry_run`` row (primary key: the date) in the same
transaction as the write-offs, so a second replica or a restarted process finds the row and
does nothing — a day is written off exactly once. A service that was down for days writes
off everything expired up to today on its first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE, items_by_sku
from services.distribution.domain.stock import (
    EVENT_SOURCE,
    Ledger,
    is_expired,
    lock_balances,
)
from services.distribution.models import ExpiryRun, LedgerKind, StockBalance, Warehouse
from shared import audit
from shared.auth import Principal
from shared.events.distribution import StockExpired
from shared.outbox import add_event

EXPIRY_JOB = Principal(sub="haven/distribution/expiry-job", roles=frozenset(), sites=frozenset())


@dataclass(frozen=True)
class ExpiryRunResult:
    run_on: date
    batches_written_off: int
    quantity_written_off: int


async def write_off_expired(
    *, session: AsyncSession, today: date, now: datetime, window_days: int
) -> ExpiryRunResult | None:
    """Write off every batch expired on ``today`` or before; None when today already ran."""
    claimed = await session.exec(
        insert(ExpiryRun)
        .values(run_on=today, started_at=now, batches_written_off=0, quantity_written_off=0)
        .on_conflict_do_nothing()
        .returning(col(ExpiryRun.run_on))
    )
    if claimed.first() is None:
        return None
    pairs = (
        await session.exec(
            select(col(StockBalance.warehouse_id), col(StockBalance.sku))
            .where(col(StockBalance.expires_on) <= today, col(StockBalance.quantity) > 0)
            .distinct()
        )
    ).all()
    ledger = Ledger(
        session,
        await lock_balances(session, [(w, s) for w, s in pairs]),
        recorded_by=EXPIRY_JOB.sub,
        now=now,
    )
    expired = [r for r in ledger.rows.values() if is_expired(r.expires_on, today) and r.quantity]
    items = await items_by_sku(session=session, skus={r.sku for r in expired}) if expired else {}
    warehouses = {
        w.id: w
        for w in (
            await session.exec(
                select(Warehouse).where(col(Warehouse.id).in_({r.warehouse_id for r in expired}))
            )
        )
    }
    total = 0
    for row in expired:
        quantity = row.quantity
        await ledger.move(row, -quantity, LedgerKind.EXPIRY_WRITE_OFF, reference=today.isoformat())
        total += quantity
        assert row.batch is not None and row.expires_on is not None  # expiry needs a batch
        warehouse = warehouses[row.warehouse_id]
        await add_event(
            session,
            StockExpired(
                warehouse_id=warehouse.id,
                site_id=warehouse.site_id,
                sku=row.sku,
                category=items[row.sku].category,
                batch=row.batch,
                quantity=quantity,
                expired_on=row.expires_on,
            ),
            key=str(warehouse.id),
            source=EVENT_SOURCE,
            actor=EXPIRY_JOB.sub,
        )
    for warehouse in warehouses.values():
        await ledger.announce_low_stock(warehouse, items, today=today, window_days=window_days)
    await session.exec(
        sa.update(ExpiryRun)
        .where(col(ExpiryRun.run_on) == today)
        .values(batches_written_off=len(expired), quantity_written_off=total)
    )
    await audit.record(
        session,
        service=SERVICE,
        principal=EXPIRY_JOB,
        action="stock.expire",
        resource_type="expiry_run",
        resource_id=today.isoformat(),
    )
    return ExpiryRunResult(today, len(expired), total)

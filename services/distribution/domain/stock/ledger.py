"""The stock ledger: append-only movements against locked balance rows, in one lock order.

Every command that changes stock follows the same steps, so concurrent commands never
oversell and never deadlock:

1. make sure the balance rows it will add to exist (``INSERT ... ON CONFLICT DO NOTHING``,
   in key order);
2. lock every balance row of the (warehouse, SKU) pairs involved with ``SELECT ... FOR
   UPDATE``, ordered by warehouse, SKU, batch — the one lock order used everywhere;
3. plan from the locked quantities (first-expiry-first-out unless a batch is named; an
   expired batch is never issued) and refuse with the shortfalls before writing anything;
4. write each ledger entry and its balance change; ``CHECK (quantity >= 0)`` is the last
   line of defence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution import queries
from services.distribution.domain.errors import InsufficientStock
from services.distribution.domain.stock.fefo import BalanceRow, is_expired
from services.distribution.models import (
    LedgerKind,
    MovementPublic,
    ReorderLevel,
    StockBalance,
    StockLedgerEntry,
)
from shared.db import run
from shared.events.distribution import StockLow
from shared.outbox import add_event

EVENT_SOURCE = "haven/distribution"


class WarehouseRef(Protocol):
    """A warehouse as stock events need it: the row, or a lighter copy of it."""

    @property
    def id(self) -> UUID: ...
    @property
    def site_id(self) -> str: ...


class ItemRef(Protocol):
    @property
    def category(self) -> str: ...


def _batch_order(batch: str | None) -> tuple[bool, str]:
    # unbatched rows first, as ``NULLS FIRST`` orders them
    return (batch is not None, batch or "")


async def ensure_balance_rows(
    session: AsyncSession,
    keys: Iterable[tuple[UUID, str, str | None, date | None]],
    *,
    now: datetime,
) -> None:
    """Create the missing balance rows (quantity 0), in key order to keep inserts deadlock-free."""
    unique_keys = {(w, s, b): e for w, s, b, e in keys}
    if not unique_keys:
        return
    ordered = sorted(
        unique_keys.items(), key=lambda kv: (kv[0][0], kv[0][1], _batch_order(kv[0][2]))
    )
    await session.exec(
        insert(StockBalance)
        .values(
            [
                {
                    "warehouse_id": w,
                    "sku": s,
                    "batch": b,
                    "expires_on": e,
                    "quantity": 0,
                    "updated_at": now,
                }
                for (w, s, b), e in ordered
            ]
        )
        .on_conflict_do_nothing(constraint="stock_balance_key")
    )


async def lock_balances(
    session: AsyncSession, pairs: Iterable[tuple[UUID, str]]
) -> list[BalanceRow]:
    """Lock every balance row of the (warehouse, SKU) pairs, in the service-wide lock order."""
    wanted = sorted(set(pairs))
    if not wanted:
        return []
    result = await run(
        session,
        queries.LOCK_BALANCES,
        {"warehouse_ids": [w for w, _ in wanted], "skus": [s for _, s in wanted]},
    )
    return [BalanceRow(**row._mapping) for row in result.all()]


class Ledger:
    """Writes movements against locked balance rows, and knows the on-hand totals."""

    def __init__(
        self,
        session: AsyncSession,
        rows: Iterable[BalanceRow],
        *,
        recorded_by: str,
        now: datetime,
    ) -> None:
        self.session = session
        self.recorded_by = recorded_by
        self.now = now
        self.rows: dict[tuple[UUID, str, str | None], BalanceRow] = {}
        self.before: dict[tuple[UUID, str], int] = defaultdict(int)
        self.add_rows(rows)

    def add_rows(self, rows: Iterable[BalanceRow]) -> None:
        for row in rows:
            if row.key not in self.rows:
                self.rows[row.key] = row
                self.before[(row.warehouse_id, row.sku)] += row.quantity

    def row(self, warehouse_id: UUID, sku: str, batch: str | None) -> BalanceRow | None:
        return self.rows.get((warehouse_id, sku, batch))

    def on_hand(self, warehouse_id: UUID, sku: str) -> int:
        return sum(r.quantity for r in self.rows.values() if r.key[:2] == (warehouse_id, sku))

    def available(self, warehouse_id: UUID, sku: str, today: date) -> int:
        return sum(
            r.quantity
            for r in self.rows.values()
            if r.key[:2] == (warehouse_id, sku) and not is_expired(r.expires_on, today)
        )

    async def move(
        self,
        row: BalanceRow,
        quantity: int,
        kind: LedgerKind,
        *,
        reason: str | None = None,
        reference: str | None = None,
        distribution_id: UUID | None = None,
        line_no: int | None = None,
        transfer_id: UUID | None = None,
    ) -> MovementPublic:
        try:
            moved = (
                await run(
                    self.session,
                    queries.MOVE,
                    {
                        "balance_id": row.id,
                        "quantity": quantity,
                        "now": self.now,
                        "warehouse_id": row.warehouse_id,
                        "sku": row.sku,
                        "batch": row.batch,
                        "expires_on": row.expires_on,
                        "kind": str(kind),
                        "reason": reason,
                        "reference": reference,
                        "distribution_id": distribution_id,
                        "line_no": line_no,
                        "transfer_id": transfer_id,
                        "recorded_by": self.recorded_by,
                    },
                )
            ).one()
        except sa_exc.IntegrityError as exc:  # the CHECK: only reachable through a bug
            raise InsufficientStock(
                f"{row.sku} would go below zero in this warehouse.",
                shortfalls=[{"sku": row.sku, "batch": row.batch, "available": row.quantity}],
            ) from exc
        entry_id, balance_after = moved.id, moved.balance_after
        row.quantity = balance_after
        return MovementPublic(
            id=entry_id,
            warehouse_id=row.warehouse_id,
            sku=row.sku,
            batch=row.batch,
            expires_on=row.expires_on,
            kind=kind,
            quantity=quantity,
            balance_after=balance_after,
            reason=reason,
            reference=reference,
            distribution_id=distribution_id,
            transfer_id=transfer_id,
            recorded_by=self.recorded_by,
            recorded_at=self.now,
        )

    async def announce_low_stock(
        self,
        warehouse: WarehouseRef,
        items: Mapping[str, ItemRef],
        *,
        today: date,
        window_days: int,
        levels: Mapping[str, int] | None = None,
    ) -> list[StockLow]:
        """StockLow for each SKU of ``warehouse`` whose on-hand total crossed below its
        reorder level in this transaction (from at or above it, to under it). ``levels``:
        the reorder levels when the caller read them already (before locking the rows)."""
        skus = sorted({sku for (w, sku) in self.before if w == warehouse.id})
        if not skus:
            return []
        if levels is None:
            levels = await reorder_levels(self.session, warehouse.id, skus)
        crossed = [
            sku
            for sku in skus
            if sku in levels
            and self.before[(warehouse.id, sku)] >= levels[sku] > self.on_hand(warehouse.id, sku)
        ]
        if not crossed:
            return []
        issued = await net_issued(
            self.session, warehouse.id, crossed, since=self.now - timedelta(days=window_days)
        )
        events = []
        for sku in crossed:
            rate = issued.get(sku, 0) / window_days
            available = self.available(warehouse.id, sku, today)
            event = StockLow(
                warehouse_id=warehouse.id,
                site_id=warehouse.site_id,
                sku=sku,
                category=items[sku].category,
                balance=self.on_hand(warehouse.id, sku),
                reorder_level=levels[sku],
                days_of_cover=days_of_cover(available, rate),
            )
            await add_event(
                self.session,
                event,
                key=str(warehouse.id),
                source=EVENT_SOURCE,
                actor=self.recorded_by,
            )
            events.append(event)
        return events


async def reorder_levels(
    session: AsyncSession, warehouse_id: UUID, skus: Iterable[str]
) -> dict[str, int]:
    """The reorder levels set for these SKUs in the warehouse."""
    rows = await session.exec(
        select(col(ReorderLevel.sku), col(ReorderLevel.level)).where(
            col(ReorderLevel.warehouse_id) == warehouse_id,
            col(ReorderLevel.sku).in_(sorted(set(skus))),
        )
    )
    return dict(rows.all())


def days_of_cover(available: int, daily_rate: float) -> float | None:
    """How many days ``available`` lasts at ``daily_rate``; None when nothing is issued."""
    if daily_rate <= 0:
        return None
    return round(available / daily_rate, 1)


async def net_issued(
    session: AsyncSession, warehouse_id: UUID, skus: Sequence[str], *, since: datetime
) -> dict[str, int]:
    """Quantity issued per SKU since ``since``, net of voided distributions' reversals."""
    rows = await session.exec(
        select(col(StockLedgerEntry.sku), -sa.func.sum(col(StockLedgerEntry.quantity)))
        .where(
            col(StockLedgerEntry.warehouse_id) == warehouse_id,
            col(StockLedgerEntry.sku).in_(skus),
            col(StockLedgerEntry.kind).in_([LedgerKind.ISSUE, LedgerKind.VOID_REVERSAL]),
            col(StockLedgerEntry.recorded_at) > since,
        )
        .group_by(col(StockLedgerEntry.sku))
    )
    return {sku: max(0, int(total)) for sku, total in rows.all()}

"""Stock commands: receipts, transfers between warehouses and adjustments (audited)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE, get_warehouse, items_by_sku
from services.distribution.domain.errors import (
    BatchExpiryMismatch,
    InsufficientStock,
    InvalidStockLines,
    ReceiptAlreadyRecorded,
)
from services.distribution.domain.stock.fefo import Withdrawal, is_expired, plan_withdrawals
from services.distribution.domain.stock.ledger import Ledger, ensure_balance_rows, lock_balances
from services.distribution.models import (
    AdjustmentCreate,
    AdjustmentLine,
    ItemCategory,
    LedgerKind,
    MovementsPublic,
    ReceiptCreate,
    StockReceipt,
    TransferCreate,
)
from shared import audit
from shared.auth import Principal


async def claim_receipt_note(
    session: AsyncSession,
    *,
    warehouse_id: UUID,
    reference: str,
    principal: Principal,
    now: datetime,
) -> None:
    """Record the delivery note, or refuse it when this warehouse already received it.

    The note's primary key makes a concurrent second receipt wait for the first and then fail,
    without locking anything the stock commands lock.
    """
    claimed = await session.exec(
        insert(StockReceipt)
        .values(
            warehouse_id=warehouse_id,
            reference=reference,
            recorded_by=principal.sub,
            recorded_at=now,
        )
        .on_conflict_do_nothing()
        .returning(col(StockReceipt.reference))
    )
    if claimed.first() is None:
        raise ReceiptAlreadyRecorded(
            f"Delivery note {reference} was already received at this warehouse.",
            reference=reference,
        )


async def receive(
    *,
    session: AsyncSession,
    principal: Principal,
    warehouse_id: UUID,
    data: ReceiptCreate,
    now: datetime,
    today: date,
) -> MovementsPublic:
    """Goods received: one receipt entry per line (batch and expiry as delivered).

    A delivery note (``reference``) is recorded once per warehouse, so a re-sent receipt
    cannot count the same goods twice.
    """
    warehouse = await get_warehouse(session=session, principal=principal, warehouse_id=warehouse_id)
    await claim_receipt_note(
        session, warehouse_id=warehouse.id, reference=data.reference, principal=principal, now=now
    )
    items = await items_by_sku(session=session, skus=[line.sku for line in data.lines])
    errors = []
    for index, line in enumerate(data.lines):
        problem = None
        if items[line.sku].category == ItemCategory.MEDICATION and (
            line.batch is None or line.expires_on is None
        ):
            problem = "medication needs a batch number and an expiry date"
        elif line.expires_on is not None and line.batch is None:
            problem = "an expiry date needs a batch number"
        elif is_expired(line.expires_on, today):
            problem = "this batch has already expired"
        if problem:
            errors.append({"line": index, "sku": line.sku, "batch": line.batch, "message": problem})
    if errors:
        raise InvalidStockLines(errors)
    await ensure_balance_rows(
        session,
        [(warehouse.id, line.sku, line.batch, line.expires_on) for line in data.lines],
        now=now,
    )
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse.id, line.sku) for line in data.lines]),
        recorded_by=principal.sub,
        now=now,
    )
    movements = []
    for line in data.lines:
        row = ledger.row(warehouse.id, line.sku, line.batch)
        assert row is not None  # ensured above
        if row.expires_on != line.expires_on:
            raise BatchExpiryMismatch(
                f"Batch {line.batch} of {line.sku} is already held with expiry date "
                f"{row.expires_on}, not {line.expires_on}.",
                sku=line.sku,
                batch=line.batch,
                expires_on=row.expires_on,
            )
        movements.append(
            await ledger.move(row, line.quantity, LedgerKind.RECEIPT, reference=data.reference)
        )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="stock.receive",
        resource_type="warehouse",
        resource_id=str(warehouse.id),
    )
    return MovementsPublic(movements=movements)


async def transfer(
    *,
    session: AsyncSession,
    principal: Principal,
    data: TransferCreate,
    now: datetime,
    today: date,
    window_days: int,
) -> MovementsPublic:
    """Move stock between warehouses; batches and expiry dates travel with it."""
    source = await get_warehouse(
        session=session, principal=principal, warehouse_id=data.from_warehouse_id
    )
    target = await get_warehouse(
        session=session, principal=principal, warehouse_id=data.to_warehouse_id
    )
    items = await items_by_sku(session=session, skus=[line.sku for line in data.lines])
    skus = sorted(items)
    rows = await lock_balances(session, [(w, s) for w in (source.id, target.id) for s in skus])
    wanted = [
        Withdrawal(line_no=i, sku=line.sku, quantity=line.quantity, batch=line.batch)
        for i, line in enumerate(data.lines)
    ]
    plan = plan_withdrawals([r for r in rows if r.warehouse_id == source.id], wanted, today=today)
    picks = [pick for line_no in sorted(plan) for pick in plan[line_no]]
    await ensure_balance_rows(
        session,
        [(target.id, p.row.sku, p.row.batch, p.row.expires_on) for p in picks],
        now=now,
    )
    ledger = Ledger(session, rows, recorded_by=principal.sub, now=now)
    ledger.add_rows(await lock_balances(session, [(target.id, s) for s in skus]))
    transfer_id = uuid.uuid4()
    movements = []
    for pick in picks:
        movements.append(
            await ledger.move(
                pick.row,
                -pick.quantity,
                LedgerKind.TRANSFER_OUT,
                reference=data.reference,
                transfer_id=transfer_id,
            )
        )
        arrival = ledger.row(target.id, pick.row.sku, pick.row.batch)
        assert arrival is not None
        if arrival.expires_on != pick.row.expires_on:
            raise BatchExpiryMismatch(
                f"Batch {pick.row.batch} of {pick.row.sku} is held at the destination with "
                f"expiry date {arrival.expires_on}, not {pick.row.expires_on}.",
                sku=pick.row.sku,
                batch=pick.row.batch,
            )
        movements.append(
            await ledger.move(
                arrival,
                pick.quantity,
                LedgerKind.TRANSFER_IN,
                reference=data.reference,
                transfer_id=transfer_id,
            )
        )
    await ledger.announce_low_stock(source, items, today=today, window_days=window_days)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="stock.transfer",
        resource_type="transfer",
        resource_id=str(transfer_id),
    )
    return MovementsPublic(movements=movements, transfer_id=transfer_id)


async def adjust(
    *,
    session: AsyncSession,
    principal: Principal,
    warehouse_id: UUID,
    data: AdjustmentCreate,
    now: datetime,
    today: date,
    window_days: int,
) -> MovementsPublic:
    """Corrections with a reason (count, damage, loss ...); never below zero."""
    warehouse = await get_warehouse(session=session, principal=principal, warehouse_id=warehouse_id)
    items = await items_by_sku(session=session, skus=[line.sku for line in data.lines])
    errors = []
    for index, line in enumerate(data.lines):
        if line.batch is None and items[line.sku].category == ItemCategory.MEDICATION:
            errors.append(
                {
                    "line": index,
                    "sku": line.sku,
                    "batch": None,
                    "message": "medication needs a batch",
                }
            )
    if errors:
        raise InvalidStockLines(errors)
    await ensure_balance_rows(
        session,
        [
            (warehouse.id, line.sku, None, None)
            for line in data.lines
            if line.batch is None and line.quantity > 0
        ],
        now=now,
    )
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse.id, line.sku) for line in data.lines]),
        recorded_by=principal.sub,
        now=now,
    )
    _check_adjustments(ledger, warehouse.id, data.lines)
    movements = []
    for line in data.lines:
        row = ledger.row(warehouse.id, line.sku, line.batch)
        assert row is not None
        movements.append(
            await ledger.move(
                row,
                line.quantity,
                LedgerKind.ADJUSTMENT,
                reason=line.reason,
                reference=data.reference,
            )
        )
    await ledger.announce_low_stock(warehouse, items, today=today, window_days=window_days)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="stock.adjust",
        resource_type="warehouse",
        resource_id=str(warehouse.id),
    )
    return MovementsPublic(movements=movements)


def _check_adjustments(ledger: Ledger, warehouse_id: UUID, lines: Sequence[AdjustmentLine]) -> None:
    """Refuse adjustments of batches not held here, or taking a balance below zero (every
    line's problem at once), against the locked balances."""
    errors: list[dict[str, Any]] = []
    projected = {key: row.quantity for key, row in ledger.rows.items()}
    shortfalls: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        key = (warehouse_id, line.sku, line.batch)
        if key not in projected:
            errors.append(
                {
                    "line": index,
                    "sku": line.sku,
                    "batch": line.batch,
                    "message": "this batch is not held in this warehouse",
                }
            )
            continue
        if projected[key] + line.quantity < 0:
            shortfalls.append(
                {
                    "line": index,
                    "sku": line.sku,
                    "batch": line.batch,
                    "requested": -line.quantity,
                    "available": projected[key],
                }
            )
        projected[key] += line.quantity
    if errors:
        raise InvalidStockLines(errors)
    if shortfalls:
        raise InsufficientStock(
            "An adjustment cannot take a balance below zero.", shortfalls=shortfalls
        )

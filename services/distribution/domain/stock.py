"""The stock ledger: append-only movements, with balances kept in the same transaction.

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

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE, get_warehouse, items_by_sku
from services.distribution.domain.errors import (
    BatchExpired,
    BatchExpiryMismatch,
    InsufficientStock,
    InvalidStockLines,
    ReceiptAlreadyRecorded,
)
from services.distribution.models import (
    AdjustmentCreate,
    BatchStockPublic,
    ItemCategory,
    ItemStockPublic,
    LedgerKind,
    MovementPublic,
    MovementsPublic,
    Page,
    ReceiptCreate,
    ReorderLevel,
    StockBalance,
    StockLedgerEntry,
    StockReceipt,
    TransferCreate,
    WarehouseStockPublic,
)
from shared import audit
from shared.auth import Principal
from shared.events.distribution import StockLow
from shared.outbox import add_event
from shared.pagination import decode_cursor, encode_cursor

EVENT_SOURCE = "haven/distribution"


def is_expired(expires_on: date | None, today: date) -> bool:
    """A batch is expired on its expiry date and after: it is never issued from then on."""
    return expires_on is not None and expires_on <= today


class WarehouseRef(Protocol):
    """A warehouse as stock events need it: the row, or a lighter copy of it."""

    @property
    def id(self) -> UUID: ...
    @property
    def site_id(self) -> str: ...


class ItemRef(Protocol):
    @property
    def category(self) -> str: ...


@dataclass
class BalanceRow:
    """A locked balance row; ``quantity`` follows the movements written in this transaction."""

    id: int
    warehouse_id: UUID
    sku: str
    batch: str | None
    expires_on: date | None
    quantity: int

    @classmethod
    def of(cls, balance: StockBalance) -> BalanceRow:
        assert balance.id is not None
        return cls(
            balance.id,
            balance.warehouse_id,
            balance.sku,
            balance.batch,
            balance.expires_on,
            balance.quantity,
        )

    @property
    def key(self) -> tuple[UUID, str, str | None]:
        return (self.warehouse_id, self.sku, self.batch)


@dataclass(frozen=True)
class Withdrawal:
    """A wanted quantity of one SKU, from a named batch or first-expiry-first-out."""

    line_no: int
    sku: str
    quantity: int
    batch: str | None = None


@dataclass(frozen=True)
class Pick:
    row: BalanceRow
    quantity: int


def _batch_order(batch: str | None) -> tuple[bool, str]:
    return (batch is not None, batch or "")


def fefo_order(row: BalanceRow) -> tuple[bool, date, str, int]:
    """Earliest expiry first; batches without an expiry date last."""
    return (row.expires_on is None, row.expires_on or date.max, row.batch or "", row.id)


def plan_withdrawals(
    rows: Sequence[BalanceRow], wanted: Sequence[Withdrawal], *, today: date
) -> dict[int, list[Pick]]:
    """Which batches each withdrawal takes from; InsufficientStock lists every shortfall.

    Pure: ``rows`` are the locked balances of one warehouse; nothing is written.
    """
    remaining = {row.id: row.quantity for row in rows}
    by_sku: dict[str, list[BalanceRow]] = defaultdict(list)
    for row in sorted(rows, key=fefo_order):
        by_sku[row.sku].append(row)
    plan: dict[int, list[Pick]] = {}
    shortfalls: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for want in wanted:
        if want.batch is not None:
            candidates = [r for r in by_sku[want.sku] if r.batch == want.batch]
            if candidates and is_expired(candidates[0].expires_on, today):
                expired.append(
                    {
                        "sku": want.sku,
                        "batch": want.batch,
                        "expires_on": str(candidates[0].expires_on),
                    }
                )
                continue
        else:
            candidates = [r for r in by_sku[want.sku] if not is_expired(r.expires_on, today)]
        available = sum(remaining[r.id] for r in candidates)
        if available < want.quantity:
            shortfalls.append(
                {
                    "line": want.line_no,
                    "sku": want.sku,
                    "batch": want.batch,
                    "requested": want.quantity,
                    "available": available,
                }
            )
            continue
        picks, left = [], want.quantity
        for row in candidates:
            take = min(left, remaining[row.id])
            if take:
                remaining[row.id] -= take
                picks.append(Pick(row, take))
                left -= take
            if not left:
                break
        plan[want.line_no] = picks
    if expired:
        raise BatchExpired(
            "A named batch has expired and can no longer be issued.", batches=expired
        )
    if shortfalls:
        raise InsufficientStock(
            "Not enough unexpired stock for "
            + ", ".join(f"{s['sku']} ({s['available']} of {s['requested']})" for s in shortfalls)
            + ".",
            shortfalls=shortfalls,
        )
    return plan


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


# Built once: calls only bind values. Joined to the wanted (warehouse, SKU) pairs as two
# arrays, so one prepared statement serves any number of pairs.
_LOCK_BALANCES = sa.text("""
SELECT b.id, b.warehouse_id, b.sku, b.batch, b.expires_on, b.quantity
FROM stock_balance AS b
JOIN unnest(CAST(:warehouse_ids AS uuid[]), CAST(:skus AS text[])) AS wanted (warehouse_id, sku)
    ON b.warehouse_id = wanted.warehouse_id AND b.sku = wanted.sku
ORDER BY b.warehouse_id, b.sku, b.batch NULLS FIRST
FOR UPDATE OF b
""").columns(
    sa.column("id", sa.BigInteger),
    sa.column("warehouse_id", sa.Uuid),
    sa.column("sku", sa.Text),
    sa.column("batch", sa.Text),
    sa.column("expires_on", sa.Date),
    sa.column("quantity", sa.Integer),
)


async def lock_balances(
    session: AsyncSession, pairs: Iterable[tuple[UUID, str]]
) -> list[BalanceRow]:
    """Lock every balance row of the (warehouse, SKU) pairs, in the service-wide lock order."""
    wanted = sorted(set(pairs))
    if not wanted:
        return []
    connection = await session.connection()
    result = await connection.execute(
        _LOCK_BALANCES,
        {"warehouse_ids": [w for w, _ in wanted], "skus": [s for _, s in wanted]},
    )
    return [BalanceRow(*row) for row in result.all()]


# A movement in one round trip: the balance row changes and its ledger entry records the
# balance after it (a locked row's hot path: every statement here is time the row stays locked).
_MOVE = sa.text("""
WITH moved AS (
    UPDATE stock_balance SET quantity = quantity + :quantity, updated_at = :now
    WHERE id = :balance_id RETURNING quantity
)
INSERT INTO stock_ledger (warehouse_id, sku, batch, expires_on, kind, quantity, balance_after,
    reason, reference, distribution_id, line_no, transfer_id, recorded_by, recorded_at)
SELECT CAST(:warehouse_id AS uuid), CAST(:sku AS text), CAST(:batch AS text),
    CAST(:expires_on AS date), CAST(:kind AS text), CAST(:quantity AS integer), moved.quantity,
    CAST(:reason AS text), CAST(:reference AS text), CAST(:distribution_id AS uuid),
    CAST(:line_no AS integer), CAST(:transfer_id AS uuid), CAST(:recorded_by AS text),
    CAST(:now AS timestamptz)
FROM moved
RETURNING id, balance_after
""")


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
        connection = await self.session.connection()
        try:
            moved = (
                await connection.execute(
                    _MOVE,
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
        entry_id, balance_after = moved
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


# --- commands ------------------------------------------------------------------------------


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
    projected = {key: row.quantity for key, row in ledger.rows.items()}
    shortfalls = []
    for index, line in enumerate(data.lines):
        key = (warehouse.id, line.sku, line.batch)
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


# --- queries -------------------------------------------------------------------------------


async def warehouse_stock(
    *,
    session: AsyncSession,
    principal: Principal,
    warehouse_id: UUID,
    now: datetime,
    today: date,
    window_days: int,
) -> WarehouseStockPublic:
    """Per SKU and per batch, with reorder level and days of cover."""
    warehouse = await get_warehouse(session=session, principal=principal, warehouse_id=warehouse_id)
    balances = (
        await session.exec(
            select(StockBalance)
            .where(col(StockBalance.warehouse_id) == warehouse.id)
            .order_by(col(StockBalance.sku), col(StockBalance.id))
        )
    ).all()
    levels = dict(
        (
            await session.exec(
                select(col(ReorderLevel.sku), col(ReorderLevel.level)).where(
                    col(ReorderLevel.warehouse_id) == warehouse.id
                )
            )
        ).all()
    )
    skus = sorted({b.sku for b in balances} | set(levels))
    if not skus:
        return WarehouseStockPublic(
            warehouse_id=warehouse.id,
            site_id=warehouse.site_id,
            as_of=today,
            issue_rate_window_days=window_days,
            items=[],
        )
    items = await items_by_sku(session=session, skus=skus)
    issued = await net_issued(session, warehouse.id, skus, since=now - timedelta(days=window_days))
    result = []
    for sku in skus:
        rows = sorted((BalanceRow.of(b) for b in balances if b.sku == sku), key=fefo_order)
        on_hand = sum(r.quantity for r in rows)
        available = sum(r.quantity for r in rows if not is_expired(r.expires_on, today))
        rate = issued.get(sku, 0) / window_days
        level = levels.get(sku)
        result.append(
            ItemStockPublic(
                sku=sku,
                name=items[sku].name,
                category=ItemCategory(items[sku].category),
                unit=items[sku].unit,
                on_hand=on_hand,
                available=available,
                reorder_level=level,
                below_reorder_level=level is not None and on_hand < level,
                issued_last_days=issued.get(sku, 0),
                daily_issue_rate=round(rate, 3),
                days_of_cover=days_of_cover(available, rate),
                batches=[
                    BatchStockPublic(
                        batch=r.batch,
                        expires_on=r.expires_on,
                        quantity=r.quantity,
                        expired=is_expired(r.expires_on, today),
                    )
                    for r in rows
                    if r.quantity > 0
                ],
            )
        )
    return WarehouseStockPublic(
        warehouse_id=warehouse.id,
        site_id=warehouse.site_id,
        as_of=today,
        issue_rate_window_days=window_days,
        items=result,
    )


async def ledger_page(
    *,
    session: AsyncSession,
    principal: Principal,
    warehouse_id: UUID,
    cursor: str | None,
    limit: int,
) -> Page[MovementPublic]:
    """The warehouse's ledger, newest entry first."""
    warehouse = await get_warehouse(session=session, principal=principal, warehouse_id=warehouse_id)
    query = select(StockLedgerEntry).where(col(StockLedgerEntry.warehouse_id) == warehouse.id)
    if cursor:
        (last_id,) = decode_cursor(cursor, types=(int,))
        query = query.where(col(StockLedgerEntry.id) < last_id)
    entries = (
        await session.exec(query.order_by(col(StockLedgerEntry.id).desc()).limit(limit + 1))
    ).all()
    page = [MovementPublic.model_validate(e, from_attributes=True) for e in entries[:limit]]
    next_cursor = encode_cursor([page[-1].id]) if len(entries) > limit else None
    return Page[MovementPublic](items=page, next_cursor=next_cursor)

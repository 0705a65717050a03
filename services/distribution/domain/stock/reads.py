"""Stock as staff read it: a warehouse's stock per SKU and batch, and its ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import get_warehouse, items_by_sku
from services.distribution.domain.stock.fefo import BalanceRow, fefo_order, is_expired
from services.distribution.domain.stock.ledger import days_of_cover, net_issued
from services.distribution.models import (
    BatchStockPublic,
    ItemCategory,
    ItemStockPublic,
    MovementPublic,
    Page,
    ReorderLevel,
    StockBalance,
    StockLedgerEntry,
    WarehouseStockPublic,
)
from shared.auth import Principal
from shared.pagination import decode_cursor, encode_cursor


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

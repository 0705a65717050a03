"""Items, warehouses and reorder levels: the reference data stock is counted against."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain import paging
from services.distribution.domain.errors import (
    AlreadyExists,
    UnknownItems,
    WarehouseNotFound,
    WarehouseOutOfScope,
)
from services.distribution.models import (
    Item,
    ItemCreate,
    ItemPublic,
    LocationIn,
    Page,
    ReorderLevel,
    ReorderLevelPublic,
    ReorderLevelSet,
    Warehouse,
    WarehouseCreate,
    WarehousePublic,
)
from shared import audit
from shared.auth import Principal

SERVICE = "distribution"


def item_public(item: Item) -> ItemPublic:
    return ItemPublic.model_validate(item, from_attributes=True)


def warehouse_public(warehouse: Warehouse) -> WarehousePublic:
    return WarehousePublic(
        id=warehouse.id,
        name=warehouse.name,
        site_id=warehouse.site_id,
        location=LocationIn(
            admin1=warehouse.admin1,
            admin2=warehouse.admin2,
            latitude=warehouse.latitude,
            longitude=warehouse.longitude,
        ),
    )


async def create_item(
    *, session: AsyncSession, principal: Principal, data: ItemCreate, now: datetime
) -> ItemPublic:
    inserted = await session.exec(
        insert(Item)
        .values(
            sku=data.sku, name=data.name, category=data.category, unit=data.unit, created_at=now
        )
        .on_conflict_do_nothing()
        .returning(col(Item.sku))
    )
    if inserted.first() is None:
        raise AlreadyExists(f"Item {data.sku} already exists.", sku=data.sku)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="item.create",
        resource_type="item",
        resource_id=data.sku,
    )
    return ItemPublic(sku=data.sku, name=data.name, category=data.category, unit=data.unit)


async def list_items(*, session: AsyncSession, cursor: str | None, limit: int) -> Page[ItemPublic]:
    """The catalogue by SKU, a page at a time."""
    query = select(Item)
    condition = paging.after([col(Item.sku)], cursor, types=(str,))
    if condition is not None:
        query = query.where(condition)
    rows = (await session.exec(query.order_by(col(Item.sku)).limit(limit + 1))).all()
    items, next_cursor = paging.page_of(rows, limit, lambda item: [item.sku])
    return Page[ItemPublic](items=[item_public(item) for item in items], next_cursor=next_cursor)


async def items_by_sku(*, session: AsyncSession, skus: Iterable[str]) -> dict[str, Item]:
    """The items of ``skus``; UnknownItems names every SKU the catalogue lacks."""
    wanted = sorted(set(skus))
    rows = await session.exec(select(Item).where(col(Item.sku).in_(wanted)))
    found = {item.sku: item for item in rows}
    missing = [sku for sku in wanted if sku not in found]
    if missing:
        raise UnknownItems(missing)
    return found


async def create_warehouse(
    *, session: AsyncSession, principal: Principal, data: WarehouseCreate, now: datetime
) -> WarehousePublic:
    warehouse_id = data.id or uuid.uuid4()
    inserted = await session.exec(
        insert(Warehouse)
        .values(
            id=warehouse_id,
            name=data.name,
            site_id=data.site_id,
            admin1=data.location.admin1,
            admin2=data.location.admin2,
            latitude=data.location.latitude,
            longitude=data.location.longitude,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(col(Warehouse.id))
    )
    if inserted.first() is None:
        raise AlreadyExists(
            f"A warehouse with this id, or named {data.name!r} at site {data.site_id}, "
            "already exists.",
            site_id=data.site_id,
        )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="warehouse.create",
        resource_type="warehouse",
        resource_id=str(warehouse_id),
    )
    return WarehousePublic(
        id=warehouse_id, name=data.name, site_id=data.site_id, location=data.location
    )


async def list_warehouses(
    *, session: AsyncSession, principal: Principal, cursor: str | None, limit: int
) -> Page[WarehousePublic]:
    """The warehouses of the caller's sites by site and name (unique), a page at a time."""
    order = [col(Warehouse.site_id), col(Warehouse.name)]
    query = select(Warehouse)
    sites = paging.site_scope(principal)
    if sites is not None:
        query = query.where(col(Warehouse.site_id).in_(sites))
    condition = paging.after(order, cursor, types=(str, str))
    if condition is not None:
        query = query.where(condition)
    rows = (await session.exec(query.order_by(*order).limit(limit + 1))).all()
    warehouses, next_cursor = paging.page_of(rows, limit, lambda w: [w.site_id, w.name])
    return Page[WarehousePublic](
        items=[warehouse_public(w) for w in warehouses], next_cursor=next_cursor
    )


async def get_warehouse(
    *, session: AsyncSession, principal: Principal, warehouse_id: UUID
) -> Warehouse:
    """The warehouse, if the caller may see its site; WarehouseNotFound otherwise."""
    warehouse = await session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise WarehouseNotFound(warehouse_id)
    if not principal.can_access_site(warehouse.site_id):
        raise WarehouseOutOfScope(warehouse_id)
    return warehouse


async def set_reorder_level(
    *,
    session: AsyncSession,
    principal: Principal,
    warehouse_id: UUID,
    sku: str,
    data: ReorderLevelSet,
    now: datetime,
) -> ReorderLevelPublic:
    await get_warehouse(session=session, principal=principal, warehouse_id=warehouse_id)
    await items_by_sku(session=session, skus=[sku])
    statement = insert(ReorderLevel).values(
        warehouse_id=warehouse_id, sku=sku, level=data.reorder_level, updated_at=now
    )
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["warehouse_id", "sku"],
            set_={"level": statement.excluded.level, "updated_at": statement.excluded.updated_at},
        )
    )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="reorder_level.set",
        resource_type="warehouse",
        resource_id=str(warehouse_id),
        reason=sku,
    )
    return ReorderLevelPublic(warehouse_id=warehouse_id, sku=sku, reorder_level=data.reorder_level)

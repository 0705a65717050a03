"""Routes of the catalogue: items, warehouses and their reorder levels."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.distribution.api.dependencies import (
    Admin,
    AdminOrManager,
    Cursor,
    Limit,
    MomentDep,
    SkuPath,
    Staff,
)
from services.distribution.domain import catalogue
from services.distribution.models import (
    ItemCreate,
    ItemPublic,
    Page,
    ReorderLevelPublic,
    ReorderLevelSet,
    WarehouseCreate,
    WarehousePublic,
)
from shared.db import in_transaction
from shared.http import problem_responses
from shared.pagination import DEFAULT_LIMIT
from shared.service import SessionDep

router = APIRouter()


@router.post("/items", status_code=201, responses=problem_responses(409))
async def create_item(
    body: ItemCreate, principal: Admin, session: SessionDep, moment: MomentDep
) -> ItemPublic:
    return await in_transaction(
        session,
        lambda: catalogue.create_item(
            session=session, principal=principal, data=body, now=moment.now
        ),
    )


@router.get("/items")
async def list_items(
    principal: Staff, session: SessionDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[ItemPublic]:
    return await catalogue.list_items(session=session, cursor=cursor, limit=limit)


@router.post("/warehouses", status_code=201, responses=problem_responses(409))
async def create_warehouse(
    body: WarehouseCreate, principal: Admin, session: SessionDep, moment: MomentDep
) -> WarehousePublic:
    return await in_transaction(
        session,
        lambda: catalogue.create_warehouse(
            session=session, principal=principal, data=body, now=moment.now
        ),
    )


@router.get("/warehouses")
async def list_warehouses(
    principal: Staff, session: SessionDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[WarehousePublic]:
    return await catalogue.list_warehouses(
        session=session, principal=principal, cursor=cursor, limit=limit
    )


@router.get("/warehouses/{warehouse_id}", responses=problem_responses(404))
async def get_warehouse(
    warehouse_id: UUID, principal: Staff, session: SessionDep
) -> WarehousePublic:
    warehouse = await catalogue.get_warehouse(
        session=session, principal=principal, warehouse_id=warehouse_id
    )
    return catalogue.warehouse_public(warehouse)


@router.put("/warehouses/{warehouse_id}/reorder-levels/{sku}", responses=problem_responses(404))
async def set_reorder_level(
    warehouse_id: UUID,
    sku: SkuPath,
    body: ReorderLevelSet,
    principal: AdminOrManager,
    session: SessionDep,
    moment: MomentDep,
) -> ReorderLevelPublic:
    return await in_transaction(
        session,
        lambda: catalogue.set_reorder_level(
            session=session,
            principal=principal,
            warehouse_id=warehouse_id,
            sku=sku,
            data=body,
            now=moment.now,
        ),
    )

"""Routes of the stock: receipts, transfers, adjustments, a warehouse's stock and ledger."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.distribution.api.dependencies import Cursor, Limit, MomentDep, Operator, Staff
from services.distribution.domain import stock
from services.distribution.models import (
    AdjustmentCreate,
    MovementPublic,
    MovementsPublic,
    Page,
    ReceiptCreate,
    TransferCreate,
    WarehouseStockPublic,
)
from services.distribution.settings import SettingsDep
from shared.db import in_transaction
from shared.http import problem_responses
from shared.pagination import DEFAULT_LIMIT
from shared.service import SessionDep

router = APIRouter()


@router.post(
    "/warehouses/{warehouse_id}/receipts",
    status_code=201,
    responses=problem_responses(404, 409),
)
async def receive(
    warehouse_id: UUID,
    body: ReceiptCreate,
    principal: Operator,
    session: SessionDep,
    moment: MomentDep,
) -> MovementsPublic:
    return await in_transaction(
        session,
        lambda: stock.receive(
            session=session,
            principal=principal,
            warehouse_id=warehouse_id,
            data=body,
            now=moment.now,
            today=moment.today,
        ),
    )


@router.post("/transfers", status_code=201, responses=problem_responses(404, 409))
async def transfer(
    body: TransferCreate,
    principal: Operator,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
) -> MovementsPublic:
    return await in_transaction(
        session,
        lambda: stock.transfer(
            session=session,
            principal=principal,
            data=body,
            now=moment.now,
            today=moment.today,
            window_days=settings.days_of_cover_window_days,
        ),
    )


@router.post(
    "/warehouses/{warehouse_id}/adjustments",
    status_code=201,
    responses=problem_responses(404, 409),
)
async def adjust(
    warehouse_id: UUID,
    body: AdjustmentCreate,
    principal: Operator,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
) -> MovementsPublic:
    return await in_transaction(
        session,
        lambda: stock.adjust(
            session=session,
            principal=principal,
            warehouse_id=warehouse_id,
            data=body,
            now=moment.now,
            today=moment.today,
            window_days=settings.days_of_cover_window_days,
        ),
    )


@router.get("/warehouses/{warehouse_id}/stock", responses=problem_responses(404))
async def warehouse_stock(
    warehouse_id: UUID,
    principal: Staff,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
) -> WarehouseStockPublic:
    return await stock.warehouse_stock(
        session=session,
        principal=principal,
        warehouse_id=warehouse_id,
        now=moment.now,
        today=moment.today,
        window_days=settings.days_of_cover_window_days,
    )


@router.get("/warehouses/{warehouse_id}/ledger", responses=problem_responses(404))
async def warehouse_ledger(
    warehouse_id: UUID,
    principal: Staff,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[MovementPublic]:
    return await stock.ledger_page(
        session=session,
        principal=principal,
        warehouse_id=warehouse_id,
        cursor=cursor,
        limit=limit,
    )

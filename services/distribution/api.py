"""HTTP routes of the distribution service: parse, authorise, call the domain, map errors.

Roles: ``admin`` manages items, warehouses and shelters; ``warehouse_operator`` (of the
warehouse's or shelter's site) records receipts, transfers, adjustments, distributions and
shelter allocations; ``manager`` voids distributions and reads reports. A resource of a site
not in the caller's token answers 404.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.clock import local_date, system_clock
from services.distribution.domain import (
    catalogue,
    distributions,
    entitlements,
    reports,
    shelter,
    stock,
)
from services.distribution.domain.metrics import count_distribution
from services.distribution.domain.policy import PolicyBook, load_policies
from services.distribution.models import (
    SKU_PATTERN,
    AdjustmentCreate,
    AllocationCreate,
    AllocationPublic,
    AllocationResult,
    CheckOutRequest,
    DistributionCreate,
    DistributionPublic,
    DistributionReport,
    EntitlementsPublic,
    IsoDate,
    ItemCreate,
    ItemPublic,
    MovementPublic,
    MovementsPublic,
    Page,
    ReceiptCreate,
    ReleaseReason,
    ReorderLevelPublic,
    ReorderLevelSet,
    ShelterCreate,
    ShelterPublic,
    SiteId,
    TransferCreate,
    VoidRequest,
    WarehouseCreate,
    WarehousePublic,
    WarehouseStockPublic,
)
from services.distribution.settings import DistributionSettings, distribution_settings
from shared.auth import Principal, Role, require_roles
from shared.http import problem_responses
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shared.problems import ServiceUnavailable
from shared.service import ServiceRuntime, SessionDep, runtime_of

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
MAX_TRANSACTION_ATTEMPTS = 3
CSV_MEDIA_TYPE = "text/csv"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load and validate the entitlement policy at start-up: a bad file stops the service."""
    runtime: ServiceRuntime[Any] = app.state.runtime
    settings = distribution_settings(runtime.settings)
    app.state.policies = load_policies(settings.policy_dir)
    log.info(
        "entitlement policy loaded",
        extra={"versions": [p.version for p in app.state.policies.policies]},
    )
    yield


router = APIRouter(prefix="/v1", tags=["distribution"], lifespan=lifespan)


# --- dependencies --------------------------------------------------------------------------


async def get_settings(request: Request) -> DistributionSettings:
    return distribution_settings(runtime_of(request).settings)


async def get_policies(request: Request) -> PolicyBook:
    policies: PolicyBook = request.app.state.policies
    return policies


@dataclass(frozen=True)
class Moment:
    """The time of the request and the programme's date (the clock is injectable)."""

    now: datetime
    today: date


async def get_moment(
    request: Request, settings: Annotated[DistributionSettings, Depends(get_settings)]
) -> Moment:
    clock = getattr(request.app.state, "clock", system_clock)
    now = clock()
    return Moment(now=now, today=local_date(now, settings.timezone))


SettingsDep = Annotated[DistributionSettings, Depends(get_settings)]
PoliciesDep = Annotated[PolicyBook, Depends(get_policies)]
MomentDep = Annotated[Moment, Depends(get_moment)]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Operator = Annotated[Principal, Depends(require_roles(Role.WAREHOUSE_OPERATOR))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
AdminOrManager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
OperatorOrManager = Annotated[
    Principal, Depends(require_roles(Role.WAREHOUSE_OPERATOR, Role.MANAGER))
]
Staff = Annotated[
    Principal, Depends(require_roles(Role.WAREHOUSE_OPERATOR, Role.MANAGER, Role.ADMIN))
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN)]


class Busy(ServiceUnavailable):
    type_slug, title = "busy", "Busy, try again"


async def in_transaction(session: AsyncSession, command: Callable[[], Awaitable[T]]) -> T:
    """Run ``command`` in one transaction; retried when PostgreSQL aborts it for a deadlock
    or a serialization failure (it then had no effect)."""
    for attempt in range(1, MAX_TRANSACTION_ATTEMPTS + 1):
        try:
            async with session.begin():
                return await command()
        except sa_exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            log.warning("transaction aborted by PostgreSQL", extra={"attempt": attempt})
    raise Busy("Too many concurrent changes; try again.", headers={"Retry-After": "1"})


# --- catalogue -----------------------------------------------------------------------------


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
async def list_items(principal: Staff, session: SessionDep) -> list[ItemPublic]:
    return await catalogue.list_items(session=session)


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
async def list_warehouses(principal: Staff, session: SessionDep) -> list[WarehousePublic]:
    return await catalogue.list_warehouses(session=session, principal=principal)


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


# --- stock ---------------------------------------------------------------------------------


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


# --- distributions -------------------------------------------------------------------------


@router.post(
    "/distributions",
    status_code=201,
    response_model=DistributionPublic,
    responses=problem_responses(404, 409, 503),
)
async def record_distribution(
    body: DistributionCreate,
    principal: Operator,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
    policies: PoliciesDep,
) -> Response:
    outcome = await in_transaction(
        session,
        lambda: distributions.record(
            session=session,
            principal=principal,
            data=body,
            policies=policies,
            now=moment.now,
            today=moment.today,
            retry_after_seconds=settings.household_retry_after_seconds,
            window_days=settings.days_of_cover_window_days,
        ),
    )
    if outcome.issued and outcome.site_id is not None:  # committed: count it now
        count_distribution(outcome.site_id, outcome.issued)
    return JSONResponse(outcome.body, status_code=outcome.status)


@router.get("/distributions")
async def list_distributions(
    principal: OperatorOrManager,
    session: SessionDep,
    household_id: UUID | None = None,
    warehouse_id: UUID | None = None,
    from_date: Annotated[IsoDate | None, Query(alias="from")] = None,
    to_date: Annotated[IsoDate | None, Query(alias="to")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DistributionPublic]:
    return await in_transaction(
        session,
        lambda: distributions.list_distributions(
            session=session,
            principal=principal,
            household_id=household_id,
            warehouse_id=warehouse_id,
            from_date=from_date,
            to_date=to_date,
            cursor=cursor,
            limit=limit,
        ),
    )


@router.get("/distributions/{distribution_id}", responses=problem_responses(404))
async def get_distribution(
    distribution_id: UUID, principal: OperatorOrManager, session: SessionDep
) -> DistributionPublic:
    return await in_transaction(
        session,
        lambda: distributions.get_distribution(
            session=session, principal=principal, distribution_id=distribution_id
        ),
    )


@router.post("/distributions/{distribution_id}/void", responses=problem_responses(404, 409))
async def void_distribution(
    distribution_id: UUID,
    body: VoidRequest,
    principal: Manager,
    session: SessionDep,
    moment: MomentDep,
) -> DistributionPublic:
    return await in_transaction(
        session,
        lambda: distributions.void(
            session=session,
            principal=principal,
            distribution_id=distribution_id,
            reason=body.reason,
            now=moment.now,
            today=moment.today,
        ),
    )


@router.get("/households/{household_id}/entitlements", responses=problem_responses(404, 503))
async def household_entitlements(
    household_id: UUID,
    principal: OperatorOrManager,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
    policies: PoliciesDep,
) -> EntitlementsPublic:
    return await in_transaction(
        session,
        lambda: entitlements.household_entitlements(
            session=session,
            principal=principal,
            household_id=household_id,
            policies=policies,
            today=moment.today,
            retry_after_seconds=settings.household_retry_after_seconds,
        ),
    )


# --- shelter -------------------------------------------------------------------------------


@router.post("/shelters", status_code=201, responses=problem_responses(409))
async def create_shelter(
    body: ShelterCreate,
    principal: Admin,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
) -> ShelterPublic:
    return await in_transaction(
        session,
        lambda: shelter.create_shelter(
            session=session,
            principal=principal,
            data=body,
            now=moment.now,
            min_space_m2=settings.min_space_per_person_m2,
        ),
    )


@router.get("/shelters")
async def list_shelters(
    principal: Staff, session: SessionDep, settings: SettingsDep
) -> list[ShelterPublic]:
    return await shelter.list_shelters(
        session=session, principal=principal, min_space_m2=settings.min_space_per_person_m2
    )


@router.get("/shelters/{shelter_id}", responses=problem_responses(404))
async def get_shelter(
    shelter_id: UUID, principal: Staff, session: SessionDep, settings: SettingsDep
) -> ShelterPublic:
    found = await shelter.get_shelter(session=session, principal=principal, shelter_id=shelter_id)
    return shelter.shelter_public(found, min_space_m2=settings.min_space_per_person_m2)


@router.post(
    "/shelters/{shelter_id}/allocations",
    status_code=201,
    responses=problem_responses(404, 409, 503),
)
async def allocate_beds(
    shelter_id: UUID,
    body: AllocationCreate,
    principal: Operator,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
    policies: PoliciesDep,
) -> AllocationResult:
    return await in_transaction(
        session,
        lambda: shelter.allocate(
            session=session,
            principal=principal,
            shelter_id=shelter_id,
            data=body,
            policies=policies,
            now=moment.now,
            today=moment.today,
            retry_after_seconds=settings.household_retry_after_seconds,
            min_space_m2=settings.min_space_per_person_m2,
        ),
    )


@router.get("/shelters/{shelter_id}/allocations", responses=problem_responses(404))
async def list_allocations(
    shelter_id: UUID,
    principal: OperatorOrManager,
    session: SessionDep,
    active: bool = True,
) -> list[AllocationPublic]:
    return await in_transaction(
        session,
        lambda: shelter.list_allocations(
            session=session, principal=principal, shelter_id=shelter_id, active_only=active
        ),
    )


@router.post(
    "/shelters/{shelter_id}/allocations/{allocation_id}/check-out",
    responses=problem_responses(404, 409),
)
async def check_out(
    shelter_id: UUID,
    allocation_id: UUID,
    principal: Operator,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
    body: CheckOutRequest | None = None,
) -> AllocationResult:
    reason = ReleaseReason((body or CheckOutRequest()).reason.value)
    return await in_transaction(
        session,
        lambda: shelter.check_out(
            session=session,
            principal=principal,
            shelter_id=shelter_id,
            allocation_id=allocation_id,
            reason=reason,
            now=moment.now,
            min_space_m2=settings.min_space_per_person_m2,
        ),
    )


# --- reports -------------------------------------------------------------------------------


@router.get(
    "/reports/distributions",
    response_model=DistributionReport,
    responses={
        **problem_responses(404),
        200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}},
    },
)
async def distribution_report(
    request: Request,
    principal: AdminOrManager,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
    from_date: Annotated[IsoDate | None, Query(alias="from")] = None,
    to_date: Annotated[IsoDate | None, Query(alias="to")] = None,
    site_id: Annotated[SiteId | None, Query()] = None,
    format: Literal["json", "csv"] | None = None,
) -> Response:
    """By day x site x item category. CSV (with an HXL hashtag row) with ``format=csv`` or
    ``Accept: text/csv``."""
    end = to_date or moment.today
    start = from_date or end - timedelta(days=30)
    report = await reports.distribution_report(
        session=session,
        principal=principal,
        from_date=start,
        to_date=end,
        site_id=site_id,
        max_days=settings.report_max_days,
    )
    wants_csv = format == "csv" or (
        format is None and CSV_MEDIA_TYPE in request.headers.get("accept", "")
    )
    if wants_csv:
        filename = f"distributions_{start.isoformat()}_{end.isoformat()}.csv"
        return Response(
            reports.report_csv(report),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return JSONResponse(report.model_dump(mode="json", by_alias=True))

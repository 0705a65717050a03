"""Routes of distributions (record, read, void), a household's entitlements and its
prescription references."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from services.distribution.api.dependencies import (
    Cursor,
    Limit,
    Manager,
    MomentDep,
    Operator,
    OperatorOrManager,
    PoliciesDep,
    Prescriber,
)
from services.distribution.domain import distributions, entitlements, prescriptions
from services.distribution.domain.metrics import count_distribution
from services.distribution.models import (
    DistributionCreate,
    DistributionPublic,
    EntitlementsPublic,
    IsoDate,
    Page,
    PrescriptionCreate,
    PrescriptionPublic,
    VoidRequest,
)
from services.distribution.settings import SettingsDep
from shared.db import in_transaction
from shared.http import problem_responses
from shared.idempotency import status_of
from shared.pagination import DEFAULT_LIMIT
from shared.service import SessionDep

router = APIRouter()


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
    return JSONResponse(outcome.body, status_code=status_of(outcome))


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


@router.post(
    "/households/{household_id}/prescriptions",
    status_code=201,
    summary="Record a prescription reference for a household",
    responses=problem_responses(404, 409),
)
async def record_prescription(
    household_id: UUID,
    body: PrescriptionCreate,
    principal: Prescriber,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
) -> PrescriptionPublic:
    return await in_transaction(
        session,
        lambda: prescriptions.record_prescription(
            session=session,
            principal=principal,
            household_id=household_id,
            data=body,
            now=moment.now,
            retry_after_seconds=settings.household_retry_after_seconds,
        ),
    )

"""Routes of shelters: shelters, bed allocations and check-outs."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.distribution.api.dependencies import (
    Admin,
    Cursor,
    Limit,
    MomentDep,
    Operator,
    OperatorOrManager,
    PoliciesDep,
    Staff,
)
from services.distribution.domain import shelter
from services.distribution.models import (
    AllocationCreate,
    AllocationPublic,
    AllocationResult,
    CheckOutRequest,
    Page,
    ReleaseReason,
    ShelterCreate,
    ShelterPublic,
)
from services.distribution.settings import SettingsDep
from shared.db import in_transaction
from shared.http import problem_responses
from shared.pagination import DEFAULT_LIMIT
from shared.service import SessionDep

router = APIRouter()


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
    principal: Staff,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ShelterPublic]:
    return await shelter.list_shelters(
        session=session,
        principal=principal,
        min_space_m2=settings.min_space_per_person_m2,
        cursor=cursor,
        limit=limit,
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
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[AllocationPublic]:
    return await in_transaction(
        session,
        lambda: shelter.list_allocations(
            session=session,
            principal=principal,
            shelter_id=shelter_id,
            active_only=active,
            cursor=cursor,
            limit=limit,
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

"""Routes of a household's members: add, change, remove."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.registration.api.common import (
    IfMatch,
    Writer,
    household_response,
    parse_if_match,
    policy,
)
from services.registration.domain import members
from services.registration.domain.views import Actor
from services.registration.models import HouseholdPublic, MemberCreate, MemberUpdate
from services.registration.settings import SettingsDep
from shared.db import in_transaction
from shared.http import problem_responses
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["registration"])


@router.post(
    "/households/{household_id}/members",
    status_code=201,
    response_model=HouseholdPublic,
    responses=problem_responses(404, 409, 410, 412, 428),
    summary="Add a member (If-Match required); returns the household",
)
async def add_member(
    household_id: UUID,
    body: MemberCreate,
    principal: Writer,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    actor = Actor(principal)
    view, member_id = await in_transaction(
        session,
        lambda: members.add_member(
            session=session,
            household_id=household_id,
            data=body,
            if_match=parse_if_match(if_match),
            actor=actor,
            now=clock(),
            policy=policy(settings),
        ),
    )
    response.headers["Location"] = f"/v1/households/{household_id}/members/{member_id}"
    return household_response(view, actor, response, 201)


@router.patch(
    "/households/{household_id}/members/{member_id}",
    response_model=HouseholdPublic,
    responses=problem_responses(404, 409, 410, 412, 428),
    summary="Change a member (If-Match required); returns the household",
)
async def update_member(
    household_id: UUID,
    member_id: UUID,
    body: MemberUpdate,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    actor = Actor(principal)
    view = await in_transaction(
        session,
        lambda: members.update_member(
            session=session,
            household_id=household_id,
            member_id=member_id,
            data=body,
            if_match=parse_if_match(if_match),
            actor=actor,
            now=clock(),
        ),
    )
    return household_response(view, actor, response)


@router.delete(
    "/households/{household_id}/members/{member_id}",
    response_model=HouseholdPublic,
    responses=problem_responses(404, 409, 410, 412, 428),
    summary="Remove a member (If-Match required); returns the household",
)
async def remove_member(
    household_id: UUID,
    member_id: UUID,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    actor = Actor(principal)
    view = await in_transaction(
        session,
        lambda: members.remove_member(
            session=session,
            household_id=household_id,
            member_id=member_id,
            if_match=parse_if_match(if_match),
            actor=actor,
            now=clock(),
        ),
    )
    return household_response(view, actor, response)

"""Routes of households: register, search, read, change, needs, deactivate, erase."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from services.registration.api.common import (
    DEFAULT_PAGE,
    IDEMPOTENCY_KEY,
    MAX_SEARCH_LENGTH,
    Admin,
    IfMatch,
    PageLimit,
    Reader,
    Writer,
    etag,
    household_response,
    parse_if_match,
    policy,
)
from services.registration.domain import erasure, households, intake
from services.registration.domain.errors import InvalidParameter
from services.registration.domain.views import Actor
from services.registration.models import (
    SITE_ID_PATTERN,
    DeactivateRequest,
    HouseholdCreate,
    HouseholdPage,
    HouseholdPublic,
    HouseholdUpdate,
    NeedsUpdate,
    RegistrationResult,
)
from services.registration.settings import SettingsDep
from shared import metrics
from shared.db import in_transaction
from shared.http import problem_responses
from shared.idempotency import status_of
from shared.service import ClockDep, SessionDep
from shared.vocabulary import HouseholdStatus

router = APIRouter(prefix="/v1", tags=["registration"])


@router.post(
    "/households",
    status_code=201,
    response_model=RegistrationResult,
    responses=problem_responses(404, 409, 410),
    summary="Register a household (field staff, admin)",
)
async def register_household(
    body: HouseholdCreate,
    principal: Writer,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    idempotency_key: Annotated[
        Annotated[str, Field(json_schema_extra={"pattern": f"^{IDEMPOTENCY_KEY.pattern}$"})] | None,
        Header(description="Makes re-sending safe: the same key and body answer the same."),
    ] = None,
) -> JSONResponse:
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidParameter(
            "Idempotency-Key", "must be 1 to 200 visible ASCII characters (a UUID is ideal)"
        )
    outcome = await in_transaction(
        session,
        lambda: intake.register(
            session=session,
            data=body,
            actor=Actor(principal),
            now=clock(),
            policy=policy(settings),
            key=idempotency_key,
            key_ttl=timedelta(hours=settings.idempotency_ttl_hours),
        ),
    )
    if not outcome.replayed:
        metrics.HOUSEHOLDS_REGISTERED.labels(body.site_id, outcome.body["status"]).inc()
    return _registered_response(outcome.body, status_of(outcome))


def _registered_response(content: dict[str, Any], status_code: int) -> JSONResponse:
    return JSONResponse(
        content,
        status_code=status_code,
        headers={"Location": f"/v1/households/{content['id']}", "ETag": etag(1)},
    )


@router.get(
    "/households",
    response_model=HouseholdPage,
    summary="Search households by name (any script), document number, phone or case number",
)
async def search_households(
    principal: Reader,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_LENGTH)] = None,
    site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
    status: HouseholdStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> HouseholdPage:
    if q is not None and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in q):
        raise InvalidParameter("q", "must not contain control characters")
    async with session.begin():
        return await households.search(
            session=session,
            actor=Actor(principal),
            q=q,
            site_id=site_id,
            status=status,
            cursor=cursor,
            limit=limit,
        )


@router.get(
    "/households/{household_id}",
    response_model=HouseholdPublic,
    responses=problem_responses(404, 410),
    summary="A household with its members (sends an ETag)",
)
async def get_household(
    household_id: UUID, principal: Reader, session: SessionDep, response: Response
) -> HouseholdPublic:
    async with session.begin():
        household, version = await households.read(
            session=session, household_id=household_id, actor=Actor(principal)
        )
    response.headers["ETag"] = etag(version)
    return household


@router.patch(
    "/households/{household_id}",
    response_model=HouseholdPublic,
    responses=problem_responses(404, 409, 410, 412, 428),
    summary="Change a household (If-Match required)",
)
async def update_household(
    household_id: UUID,
    body: HouseholdUpdate,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    actor = Actor(principal)
    view = await in_transaction(
        session,
        lambda: households.update(
            session=session,
            household_id=household_id,
            data=body,
            if_match=parse_if_match(if_match),
            actor=actor,
            now=clock(),
        ),
    )
    return household_response(view, actor, response)


@router.put(
    "/households/{household_id}/needs",
    response_model=HouseholdPublic,
    responses=problem_responses(404, 409, 410, 412, 428),
    summary="Replace the assessed needs (If-Match required)",
)
async def set_needs(
    household_id: UUID,
    body: NeedsUpdate,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    actor = Actor(principal)
    view = await in_transaction(
        session,
        lambda: households.set_needs(
            session=session,
            household_id=household_id,
            needs=body.needs,
            if_match=parse_if_match(if_match),
            actor=actor,
            now=clock(),
        ),
    )
    return household_response(view, actor, response)


@router.post(
    "/households/{household_id}/deactivate",
    response_model=HouseholdPublic,
    responses=problem_responses(404, 409, 410, 412),
    summary="Deactivate a household with a reason (If-Match optional)",
)
async def deactivate_household(
    household_id: UUID,
    body: DeactivateRequest,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    actor = Actor(principal)
    view = await in_transaction(
        session,
        lambda: households.deactivate(
            session=session,
            household_id=household_id,
            reason=body.reason,
            if_match=parse_if_match(if_match),
            actor=actor,
            now=clock(),
        ),
    )
    return household_response(view, actor, response)


@router.delete(
    "/households/{household_id}",
    status_code=204,
    responses=problem_responses(404, 410),
    summary="Erase a household's personal data at the person's request (admin)",
)
async def erase_household(
    household_id: UUID, principal: Admin, session: SessionDep, clock: ClockDep
) -> Response:
    await in_transaction(
        session,
        lambda: erasure.erase(
            session=session, household_id=household_id, actor=Actor(principal), now=clock()
        ),
    )
    return Response(status_code=204)

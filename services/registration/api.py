"""HTTP routes of the registration service: parse, authorise, call the domain.

Roles: field_staff register, read and change households of their own sites; caseworker and
manager read; admin does everything (sites, erasure). Another site's household is 404.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from services.registration.domain import (
    erasure,
    households,
    intake,
    members,
    reports,
    reviews,
    sites,
)
from services.registration.domain.dedup import DedupPolicy
from services.registration.domain.errors import InvalidParameter, SiteOutOfScope
from services.registration.domain.views import Actor, HouseholdView, household_public
from services.registration.models import (
    SITE_ID_PATTERN,
    DeactivateRequest,
    DuplicateReviewPage,
    DuplicateReviewPublic,
    HouseholdCreate,
    HouseholdPage,
    HouseholdPublic,
    HouseholdUpdate,
    MemberCreate,
    MemberUpdate,
    NeedsUpdate,
    RegistrationResult,
    ResolveRequest,
    ReviewStatus,
    SiteCreate,
    SitePublic,
)
from services.registration.settings import RegistrationSettings, SettingsDep
from shared import metrics
from shared.auth import Principal, PrincipalDep, Role, require_roles
from shared.db import in_transaction
from shared.http import problem_responses
from shared.idempotency import status_of
from shared.service import ClockDep, SessionDep
from shared.vocabulary import HouseholdStatus

router = APIRouter(prefix="/v1", tags=["registration"])

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_SEARCH_LENGTH = 100
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_ETAG = re.compile(r'\s*(?:W/)?"(\d{1,9})"\s*')

Writer = Annotated[Principal, Depends(require_roles(Role.FIELD_STAFF, Role.ADMIN))]
Reader = Annotated[
    Principal,
    Depends(require_roles(Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.ADMIN)),
]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
IfMatch = Annotated[
    str | None,
    Header(description='The ETag last read, e.g. W/"3". Required for changes.'),
]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(value: str | None) -> frozenset[int] | None:
    """The versions an If-Match header names; None when absent (or `*`: a version is needed)."""
    if value is None or value.strip() in ("", "*"):
        return None
    versions = set()
    for part in value.split(","):
        match = _ETAG.fullmatch(part)
        versions.add(int(match.group(1)) if match else -1)  # -1 never matches: 412
    return frozenset(versions)


def policy(settings: RegistrationSettings) -> DedupPolicy:
    return DedupPolicy(
        threshold=settings.duplicate_threshold,
        candidates_per_member=settings.dedup_candidates_per_member,
    )


def household_response(
    view: HouseholdView, actor: Actor, response: Response, status_code: int = 200
) -> HouseholdPublic:
    response.headers["ETag"] = etag(view.household.version)
    response.status_code = status_code
    return household_public(view, sees_sensitive=actor.sees_sensitive)


# --- sites ---------------------------------------------------------------------------------


@router.post(
    "/sites",
    status_code=201,
    response_model=SitePublic,
    responses=problem_responses(409),
    summary="Add a registration site (admin)",
)
async def create_site(
    body: SiteCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> SitePublic:
    return await in_transaction(
        session,
        lambda: sites.create_site(session=session, data=body, principal=principal, now=clock()),
    )


@router.get("/sites", response_model=list[SitePublic], summary="Registration sites")
async def list_sites(principal: PrincipalDep, session: SessionDep) -> list[SitePublic]:
    async with session.begin():
        return await sites.list_sites(session=session)


# --- households ----------------------------------------------------------------------------


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
        str | None,
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


# --- duplicate review ----------------------------------------------------------------------


@router.get(
    "/duplicates",
    response_model=DuplicateReviewPage,
    summary="The duplicate review queue, with scores and reasons",
)
async def list_duplicates(
    principal: Reader,
    session: SessionDep,
    status: ReviewStatus = ReviewStatus.OPEN,
    site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> DuplicateReviewPage:
    async with session.begin():
        return await reviews.list_reviews(
            session=session,
            actor=Actor(principal),
            status=status,
            site_id=site_id,
            cursor=cursor,
            limit=limit,
        )


@router.post(
    "/duplicates/{review_id}/resolve",
    response_model=DuplicateReviewPublic,
    responses=problem_responses(404, 409, 410),
    summary="Decide a review: merge into another household, or not a duplicate",
)
async def resolve_duplicate(
    review_id: UUID,
    body: ResolveRequest,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> DuplicateReviewPublic:
    return await in_transaction(
        session,
        lambda: reviews.resolve(
            session=session, review_id=review_id, decision=body, actor=Actor(principal), now=clock()
        ),
    )


# --- reports -------------------------------------------------------------------------------


@router.get(
    "/reports/households.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(404)},
    summary="Households and people by site x displacement status x sex x age band (HXL CSV)",
)
async def households_report(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
    from_date: Annotated[date | None, Query(alias="from")] = None,
    to_date: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    if from_date and to_date and from_date > to_date:
        raise InvalidParameter("from", "must not be after 'to'")
    actor = Actor(principal)
    if site_id is not None and not actor.can_access(site_id):
        raise SiteOutOfScope(f"No site {site_id} among your sites.")
    async with session.begin():
        body = await reports.households_csv(
            session=session,
            actor=actor,
            site_id=site_id,
            from_date=from_date,
            to_date=to_date,
            today=clock().date(),
            min_cell=settings.report_min_cell,
        )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="households.csv"'},
    )

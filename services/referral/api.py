"""HTTP routes of the referral service: parse, authorise, call the domain, map errors.

Roles: the directory is the admins' (caseworkers and managers read it); caseworkers and
managers refer, read and cancel within their sites; managers also revoke and assign from the
queue; provider staff (role ``provider``, claim ``org``) see and act on their organisation's
referrals only, through a restricted view.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, status

from services.referral.domain import consent, hsds, providers, referrals
from services.referral.domain.common import (
    DEFAULT_PAGE,
    MAX_PAGE,
    Actor,
)
from services.referral.domain.states import Status
from services.referral.domain.vocabulary import ConsentTaskStatus, ServiceType
from services.referral.models import (
    AssignRequest,
    CancelRequest,
    ConsentTaskPage,
    ConsentTaskPublic,
    DeclineReceipt,
    DeclineRequest,
    HsdsImportResult,
    PCode,
    ProviderCreate,
    ProviderPage,
    ProviderPublic,
    ProviderReferralPage,
    ProviderReferralView,
    ProviderUpdate,
    Referral,
    ReferralCreate,
    ReferralPage,
    ReferralPublic,
    RevokeRequest,
)
from services.referral.settings import SettingsDep
from shared.auth import Principal, Role, require_roles
from shared.clock import Clock
from shared.db import in_transaction
from shared.http import problem_responses
from shared.pagination import decode_id_cursor, encode_id_cursor
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["referral"])


Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
DirectoryReader = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.CASEWORKER, Role.MANAGER))
]
DirectoryExporter = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
Referrer = Annotated[Principal, Depends(require_roles(Role.CASEWORKER, Role.MANAGER))]
ReferralReader = Annotated[
    Principal, Depends(require_roles(Role.CASEWORKER, Role.MANAGER, Role.PROVIDER))
]
ProviderStaff = Annotated[Principal, Depends(require_roles(Role.PROVIDER))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]

NOT_FOUND = problem_responses(404)
CONFLICT = problem_responses(404, 409)


# --- provider directory --------------------------------------------------------------------


@router.post(
    "/providers",
    status_code=status.HTTP_201_CREATED,
    response_model=ProviderPublic,
    responses=problem_responses(409),
)
async def create_provider(
    data: ProviderCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> ProviderPublic:
    """Add an organisation to the directory (409 if its name or id is already there)."""

    async def work() -> ProviderPublic:
        provider = await providers.create(
            session=session, data=data, actor=Actor(principal), now=clock()
        )
        return providers.to_public(provider, 0)

    return await in_transaction(session, work)


@router.get("/providers", response_model=ProviderPage)
async def list_providers(
    principal: DirectoryReader,
    session: SessionDep,
    service_type: ServiceType | None = None,
    region: PCode | None = None,
    active: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ProviderPage:
    async with session.begin():
        rows = await providers.page(
            session,
            after=decode_id_cursor(cursor) if cursor else None,
            limit=limit,
            service_type=service_type,
            region=region,
            active=active,
        )
        items = await providers.public_views(session, rows)
    return ProviderPage(
        items=items, next_cursor=encode_id_cursor(rows[-1].id) if len(rows) == limit else None
    )


@router.get("/providers/hsds", responses=problem_responses(403))
async def export_providers_hsds(
    principal: DirectoryExporter, session: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    """The whole directory as one page of Open Referral HSDS 3 organisations."""
    async with session.begin():
        return await hsds.export(session, now=clock())


@router.post("/providers/hsds", response_model=HsdsImportResult, responses=CONFLICT)
async def import_providers_hsds(
    principal: Admin,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    document: Annotated[dict[str, Any], Body(description="HSDS organisation page.")],
) -> HsdsImportResult:
    """Create or update providers from HSDS organisations, all or nothing."""

    async def work() -> HsdsImportResult:
        return await hsds.import_document(
            session=session,
            raw=document,
            actor=Actor(principal),
            now=clock(),
            max_organizations=settings.import_max_organizations,
        )

    return await in_transaction(session, work)


@router.get("/providers/{provider_id}", response_model=ProviderPublic, responses=NOT_FOUND)
async def get_provider(
    provider_id: UUID, principal: DirectoryReader, session: SessionDep
) -> ProviderPublic:
    async with session.begin():
        provider = await providers.get(session, provider_id)
        return (await providers.public_views(session, [provider]))[0]


@router.patch("/providers/{provider_id}", response_model=ProviderPublic, responses=CONFLICT)
async def update_provider(
    provider_id: UUID,
    data: ProviderUpdate,
    principal: Admin,
    session: SessionDep,
    clock: ClockDep,
) -> ProviderPublic:
    async def work() -> ProviderPublic:
        provider = await providers.update(
            session=session,
            provider_id=provider_id,
            data=data,
            actor=Actor(principal),
            now=clock(),
        )
        return (await providers.public_views(session, [provider]))[0]

    return await in_transaction(session, work)


# --- referrals -----------------------------------------------------------------------------


async def _view_for(
    session: Any, referral: Referral, principal: Principal, clock: Clock
) -> ReferralPublic | ProviderReferralView:
    if referrals.sees_as_provider(principal):
        return (await referrals.provider_views(session, [referral]))[0]
    return await referrals.to_public(session, referral, clock())


@router.post(
    "/referrals",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralPublic,
    responses=CONFLICT,
)
async def create_referral(
    data: ReferralCreate,
    principal: Referrer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReferralPublic:
    """Refer a household by hand. 404 if the household is not known here (yet), 409 without
    referral-sharing consent unless ``consent_override`` with an ``override_reason``."""

    async def work() -> ReferralPublic:
        referral = await referrals.create_manual(
            session=session,
            principal=principal,
            data=data,
            now=clock(),
            settings=settings,
        )
        return await referrals.to_public(session, referral, clock())

    return await in_transaction(session, work)


@router.get("/referrals", response_model=ReferralPage | ProviderReferralPage)
async def list_referrals(
    principal: ReferralReader,
    session: SessionDep,
    clock: ClockDep,
    household_id: UUID | None = None,
    status: Annotated[
        Status | None, Query(description="`unassigned` is the managers' queue.")
    ] = None,
    service_type: ServiceType | None = None,
    provider_id: UUID | None = None,
    overdue: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ReferralPage | ProviderReferralPage:
    """Referrals the caller may see, oldest first. Providers get their own, restricted."""
    now = clock()
    async with session.begin():
        rows = await referrals.page(
            session,
            principal=principal,
            now=now,
            after=decode_id_cursor(cursor) if cursor else None,
            limit=limit,
            household_id=household_id,
            status=status,
            service_type=service_type,
            provider_id=provider_id,
            overdue=overdue,
        )
        next_cursor = encode_id_cursor(rows[-1].id) if len(rows) == limit else None
        if referrals.sees_as_provider(principal):
            return ProviderReferralPage(
                items=await referrals.provider_views(session, rows), next_cursor=next_cursor
            )
        return ReferralPage(
            items=[referrals.to_summary(r, now) for r in rows], next_cursor=next_cursor
        )


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralPublic | ProviderReferralView,
    responses=NOT_FOUND,
)
async def get_referral(
    referral_id: UUID, principal: ReferralReader, session: SessionDep, clock: ClockDep
) -> ReferralPublic | ProviderReferralView:
    """One referral with its history (a provider sees only its own steps)."""
    async with session.begin():
        referral = await referrals.read(session, referral_id, principal)
        return await _view_for(session, referral, principal, clock)


@router.post(
    "/referrals/{referral_id}/accept", response_model=ProviderReferralView, responses=CONFLICT
)
async def accept_referral(
    referral_id: UUID, principal: ProviderStaff, session: SessionDep, clock: ClockDep
) -> ProviderReferralView:
    async def work() -> ProviderReferralView:
        referral = await referrals.accept(
            session=session, principal=principal, referral_id=referral_id, now=clock()
        )
        return (await referrals.provider_views(session, [referral]))[0]

    return await in_transaction(session, work)


@router.post("/referrals/{referral_id}/decline", response_model=DeclineReceipt, responses=CONFLICT)
async def decline_referral(
    referral_id: UUID,
    data: DeclineRequest,
    principal: ProviderStaff,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DeclineReceipt:
    """Decline with a reason; the referral moves on to the next provider (or the queue) and
    is no longer the decliner's to see."""

    async def work() -> None:
        await referrals.decline(
            session=session,
            principal=principal,
            referral_id=referral_id,
            reason_code=data.reason_code,
            note=data.note,
            now=clock(),
            settings=settings,
        )

    await in_transaction(session, work)
    return DeclineReceipt(id=referral_id, status=Status.DECLINED, reason_code=data.reason_code)


@router.post(
    "/referrals/{referral_id}/start", response_model=ProviderReferralView, responses=CONFLICT
)
async def start_referral(
    referral_id: UUID, principal: ProviderStaff, session: SessionDep, clock: ClockDep
) -> ProviderReferralView:
    async def work() -> ProviderReferralView:
        referral = await referrals.start(
            session=session, principal=principal, referral_id=referral_id, now=clock()
        )
        return (await referrals.provider_views(session, [referral]))[0]

    return await in_transaction(session, work)


@router.post(
    "/referrals/{referral_id}/complete", response_model=ProviderReferralView, responses=CONFLICT
)
async def complete_referral(
    referral_id: UUID, principal: ProviderStaff, session: SessionDep, clock: ClockDep
) -> ProviderReferralView:
    async def work() -> ProviderReferralView:
        referral = await referrals.complete(
            session=session, principal=principal, referral_id=referral_id, now=clock()
        )
        return (await referrals.provider_views(session, [referral]))[0]

    return await in_transaction(session, work)


@router.post("/referrals/{referral_id}/cancel", response_model=ReferralPublic, responses=CONFLICT)
async def cancel_referral(
    referral_id: UUID,
    principal: Referrer,
    session: SessionDep,
    clock: ClockDep,
    data: Annotated[CancelRequest | None, Body()] = None,
) -> ReferralPublic:
    data = data or CancelRequest()

    async def work() -> ReferralPublic:
        referral = await referrals.cancel(
            session=session,
            principal=principal,
            referral_id=referral_id,
            reason_code=data.reason_code,
            note=data.note,
            now=clock(),
        )
        return await referrals.to_public(session, referral, clock())

    return await in_transaction(session, work)


@router.post("/referrals/{referral_id}/revoke", response_model=ReferralPublic, responses=CONFLICT)
async def revoke_referral(
    referral_id: UUID,
    data: RevokeRequest,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
) -> ReferralPublic:
    async def work() -> ReferralPublic:
        referral = await referrals.revoke(
            session=session,
            principal=principal,
            referral_id=referral_id,
            reason_code=data.reason_code,
            note=data.note,
            now=clock(),
        )
        return await referrals.to_public(session, referral, clock())

    return await in_transaction(session, work)


@router.post("/referrals/{referral_id}/assign", response_model=ReferralPublic, responses=CONFLICT)
async def assign_referral(
    referral_id: UUID,
    data: AssignRequest,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReferralPublic:
    """Take a referral out of the managers' queue and send it to a chosen provider."""

    async def work() -> ReferralPublic:
        referral = await referrals.assign(
            session=session,
            principal=principal,
            referral_id=referral_id,
            provider_id=data.provider_id,
            now=clock(),
            settings=settings,
        )
        return await referrals.to_public(session, referral, clock())

    return await in_transaction(session, work)


# --- consent follow-ups --------------------------------------------------------------------


@router.get("/consent-tasks", response_model=ConsentTaskPage)
async def list_consent_tasks(
    principal: Referrer,
    session: SessionDep,
    status: ConsentTaskStatus | None = ConsentTaskStatus.OPEN,
    household_id: UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ConsentTaskPage:
    """Households to ask for referral-sharing consent (open tasks by default)."""
    async with session.begin():
        rows = await consent.page(
            session,
            sites=referrals.visible_sites(principal),
            after=decode_id_cursor(cursor) if cursor else None,
            limit=limit,
            status=status,
            household_id=household_id,
            actor=Actor(principal),
        )
    return ConsentTaskPage(
        items=[ConsentTaskPublic.model_validate(t, from_attributes=True) for t in rows],
        next_cursor=encode_id_cursor(rows[-1].id) if len(rows) == limit else None,
    )

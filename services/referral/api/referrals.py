"""Routes of referrals: create, list, count, read, and every step of their path."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, status

from services.referral.api.common import (
    CONFLICT,
    NOT_FOUND,
    Cursor,
    Limit,
    ProviderStaff,
    QueueKeeper,
    ReferralReader,
    Referrer,
)
from services.referral.domain import referrals
from services.referral.domain.common import (
    DEFAULT_PAGE,
)
from services.referral.domain.states import Status
from services.referral.domain.vocabulary import ServiceType
from services.referral.models import (
    AssignRequest,
    CancelRequest,
    DeclineReceipt,
    DeclineRequest,
    ProviderReferralPage,
    ProviderReferralView,
    Referral,
    ReferralCounts,
    ReferralCreate,
    ReferralPage,
    ReferralPublic,
    RevokeRequest,
)
from services.referral.settings import ReferralSettings, SettingsDep
from shared.auth import Principal
from shared.clock import Clock
from shared.db import in_transaction
from shared.pagination import decode_id_cursor, encode_id_cursor
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["referral"])


async def _provider_view(
    session: Any, referral: Referral, principal: Principal, settings: ReferralSettings
) -> ProviderReferralView:
    views = await referrals.provider_views(
        session, [referral], principal=principal, pseudonym_key=settings.pseudonym_key()
    )
    return views[0]


async def _view_for(
    session: Any,
    referral: Referral,
    principal: Principal,
    clock: Clock,
    settings: ReferralSettings,
) -> ReferralPublic | ProviderReferralView:
    if referrals.sees_as_provider(principal):
        return await _provider_view(session, referral, principal, settings)
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
    settings: SettingsDep,
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
                items=await referrals.provider_views(
                    session, rows, principal=principal, pseudonym_key=settings.pseudonym_key()
                ),
                next_cursor=next_cursor,
            )
        return ReferralPage(
            items=[referrals.to_summary(r, now) for r in rows], next_cursor=next_cursor
        )


@router.get("/referrals/counts", response_model=ReferralCounts)
async def count_referrals(
    principal: Referrer,
    session: SessionDep,
    settings: SettingsDep,
    site_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="One of your sites only.")
    ] = None,
) -> ReferralCounts:
    """How many referrals of each service type are in each status in your sites, sensitive
    ones included (which managers cannot list); counts below ``min_cell`` are null."""
    async with session.begin():
        return await referrals.counts(
            session, principal=principal, site_id=site_id, min_cell=settings.report_min_cell
        )


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralPublic | ProviderReferralView,
    responses=NOT_FOUND,
)
async def get_referral(
    referral_id: UUID,
    principal: ReferralReader,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReferralPublic | ProviderReferralView:
    """One referral with its history (a provider sees only its own steps)."""
    async with session.begin():
        referral = await referrals.read(session, referral_id, principal)
        return await _view_for(session, referral, principal, clock, settings)


@router.post(
    "/referrals/{referral_id}/accept", response_model=ProviderReferralView, responses=CONFLICT
)
async def accept_referral(
    referral_id: UUID,
    principal: ProviderStaff,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ProviderReferralView:
    async def work() -> ProviderReferralView:
        referral = await referrals.accept(
            session=session, principal=principal, referral_id=referral_id, now=clock()
        )
        return await _provider_view(session, referral, principal, settings)

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
    referral_id: UUID,
    principal: ProviderStaff,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ProviderReferralView:
    async def work() -> ProviderReferralView:
        referral = await referrals.start(
            session=session, principal=principal, referral_id=referral_id, now=clock()
        )
        return await _provider_view(session, referral, principal, settings)

    return await in_transaction(session, work)


@router.post(
    "/referrals/{referral_id}/complete", response_model=ProviderReferralView, responses=CONFLICT
)
async def complete_referral(
    referral_id: UUID,
    principal: ProviderStaff,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ProviderReferralView:
    async def work() -> ProviderReferralView:
        referral = await referrals.complete(
            session=session, principal=principal, referral_id=referral_id, now=clock()
        )
        return await _provider_view(session, referral, principal, settings)

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
    principal: QueueKeeper,
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
    principal: QueueKeeper,
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

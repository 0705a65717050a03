"""What people and deadlines do to a referral: accept, decline, start, complete, close, assign."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import providers
from services.referral.domain.common import Actor, emit, record_audit
from services.referral.domain.errors import (
    ProviderUnsuitable,
)
from services.referral.domain.metrics import count_acceptance
from services.referral.domain.referrals.access import (
    load_for_provider,
    load_for_staff,
)
from services.referral.domain.referrals.changes import (
    apply_action,
    event_fields,
    save,
)
from services.referral.domain.referrals.sending import (
    give_to,
    route,
    sent_event,
)
from services.referral.domain.states import (
    OPEN_STATUSES,
    Action,
    Status,
    next_status,
)
from services.referral.domain.vocabulary import (
    CancelReason,
    DeclineReason,
    RevokeReason,
)
from services.referral.models import (
    HouseholdView,
    Referral,
)
from services.referral.settings import ReferralSettings
from shared.auth import Principal
from shared.events.referral import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralDeclined,
    ReferralRevoked,
    ReferralStarted,
)


async def _simple(
    session: AsyncSession,
    referral: Referral,
    action: Action,
    event: type[ReferralAccepted | ReferralStarted | ReferralCompleted],
    *,
    actor: Actor,
    now: datetime,
) -> Referral:
    previous = apply_action(referral, action, now)
    await save(
        session,
        referral,
        action=action,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=referral.provider_id,
    )
    await emit(
        session, event(**event_fields(referral)), household_id=referral.household_id, actor=actor
    )
    await record_audit(
        session,
        actor,
        action=f"referral.{action}",
        resource_type="referral",
        resource_id=referral.id,
    )
    return referral


async def accept(
    *, session: AsyncSession, principal: Principal, referral_id: UUID, now: datetime
) -> Referral:
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    accepted = await _simple(
        session, referral, Action.ACCEPT, ReferralAccepted, actor=Actor(principal), now=now
    )
    count_acceptance(session, accepted, now)
    return accepted


async def start(
    *, session: AsyncSession, principal: Principal, referral_id: UUID, now: datetime
) -> Referral:
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    return await _simple(
        session, referral, Action.START, ReferralStarted, actor=Actor(principal), now=now
    )


async def complete(
    *, session: AsyncSession, principal: Principal, referral_id: UUID, now: datetime
) -> Referral:
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    return await _simple(
        session, referral, Action.COMPLETE, ReferralCompleted, actor=Actor(principal), now=now
    )


async def decline(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    reason_code: DeclineReason,
    note: str | None,
    now: datetime,
    settings: ReferralSettings,
) -> Referral:
    """The provider says no: record why, then reroute to the next provider (or the queue)."""
    actor = Actor(principal)
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    previous = apply_action(referral, Action.DECLINE, now)
    await save(
        session,
        referral,
        action=Action.DECLINE,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=referral.provider_id,
        reason_code=reason_code,
        note=note,
    )
    await emit(
        session,
        ReferralDeclined(**event_fields(referral), reason_code=reason_code),
        household_id=referral.household_id,
        actor=actor,
    )
    household = await session.get(HouseholdView, referral.household_id)
    await route(
        session,
        referral,
        household,
        actor=actor,
        now=now,
        settings=settings,
        reroute_reason="declined",
    )
    await record_audit(
        session,
        actor,
        action="referral.decline",
        resource_type="referral",
        resource_id=referral.id,
        reason=reason_code,
    )
    return referral


async def close(
    session: AsyncSession,
    referral: Referral,
    action: Action,
    *,
    reason_code: str,
    note: str | None = None,
    actor: Actor,
    now: datetime,
) -> Referral:
    """Cancel or revoke an open referral (the provider keeps seeing it, as closed)."""
    previous = apply_action(referral, action, now)
    await save(
        session,
        referral,
        action=action,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=referral.provider_id,
        reason_code=reason_code,
        note=note,
    )
    event = (
        ReferralCancelled(**event_fields(referral), reason_code=reason_code)
        if action == Action.CANCEL
        else ReferralRevoked(**event_fields(referral), reason_code=reason_code)
    )
    await emit(session, event, household_id=referral.household_id, actor=actor)
    await record_audit(
        session,
        actor,
        action=f"referral.{action}",
        resource_type="referral",
        resource_id=referral.id,
        reason=reason_code,
    )
    return referral


async def cancel(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    reason_code: CancelReason,
    note: str | None,
    now: datetime,
) -> Referral:
    referral = await load_for_staff(session, referral_id, principal, lock=True)
    return await close(
        session,
        referral,
        Action.CANCEL,
        reason_code=reason_code,
        note=note,
        actor=Actor(principal),
        now=now,
    )


async def revoke(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    reason_code: RevokeReason,
    note: str | None,
    now: datetime,
) -> Referral:
    referral = await load_for_staff(session, referral_id, principal, lock=True)
    return await close(
        session,
        referral,
        Action.REVOKE,
        reason_code=reason_code,
        note=note,
        actor=Actor(principal),
        now=now,
    )


async def assign(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    provider_id: UUID,
    now: datetime,
    settings: ReferralSettings,
) -> Referral:
    """A manager takes a referral out of the queue and gives it to a provider by hand
    (capacity and region are the manager's call; the service type must match)."""
    actor = Actor(principal)
    referral = await load_for_staff(session, referral_id, principal, lock=True)
    next_status(Status(referral.status), Action.ASSIGN)  # 409 before looking at the provider
    provider = await providers.get(session, provider_id, lock=True)
    if not provider.active or referral.service_type not in provider.services:
        raise ProviderUnsuitable(
            f"Provider {provider_id} does not currently offer {referral.service_type}.",
            provider_id=provider_id,
        )
    previous = apply_action(referral, Action.ASSIGN, now)
    give_to(referral, provider, now, settings)
    await save(
        session,
        referral,
        action=Action.ASSIGN,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=provider.id,
    )
    await emit(
        session, sent_event(referral, provider), household_id=referral.household_id, actor=actor
    )
    await record_audit(
        session, actor, action="referral.assign", resource_type="referral", resource_id=referral.id
    )
    return referral


async def close_open_for_household(
    *,
    session: AsyncSession,
    household_id: UUID,
    reason: CancelReason,
    actor: Actor,
    now: datetime,
    keep_consent_overrides: bool = False,
) -> list[Referral]:
    """Cancel the household's open referrals (those made with a consent override stay,
    when asked: their legal basis was never the consent flag)."""
    query = (
        select(Referral)
        .where(Referral.household_id == household_id)
        .where(col(Referral.status).in_([str(s) for s in OPEN_STATUSES]))
        .order_by(col(Referral.id))
        .with_for_update()
    )
    if keep_consent_overrides:
        query = query.where(Referral.consent_override == sa.false())
    open_referrals = list((await session.exec(query)).all())
    for referral in open_referrals:
        await close(session, referral, Action.CANCEL, reason_code=reason, actor=actor, now=now)
    return open_referrals

"""Reading referrals: summaries, the public and the provider views, filtered pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain.common import Actor, record_audit
from services.referral.domain.referrals.access import (
    provider_org,
    sees_as_provider,
    sees_every_sensitive,
    visible_sites,
)
from services.referral.domain.states import (
    Action,
    Status,
    allowed_actions,
)
from services.referral.domain.vocabulary import (
    Origin,
    ServiceType,
    Urgency,
)
from services.referral.models import (
    HistoryEntryPublic,
    HouseholdBrief,
    HouseholdView,
    ProviderHistoryEntry,
    ProviderReferralView,
    Referral,
    ReferralHistory,
    ReferralPublic,
    ReferralSummary,
)
from shared.auth import Principal

PROVIDER_ACTIONS = frozenset({Action.ACCEPT, Action.DECLINE, Action.START, Action.COMPLETE})
STAFF_ACTIONS = frozenset({Action.CANCEL, Action.REVOKE, Action.ASSIGN})


def is_overdue(referral: Referral, now: datetime) -> bool:
    return referral.status == Status.SENT and referral.due_at is not None and referral.due_at <= now


def to_summary(referral: Referral, now: datetime) -> ReferralSummary:
    return ReferralSummary(
        id=referral.id,
        household_id=referral.household_id,
        site_id=referral.site_id,
        service_type=ServiceType(referral.service_type),
        urgency=Urgency(referral.urgency),
        sensitive=referral.sensitive,
        status=Status(referral.status),
        provider_id=referral.provider_id,
        due_at=referral.due_at,
        overdue=is_overdue(referral, now),
        escalation_tier=referral.escalation_tier,
        origin=Origin(referral.origin),
        reason=referral.reason,
        consent_override=referral.consent_override,
        caseworker_sub=referral.caseworker_sub,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
        allowed_actions=[a for a in allowed_actions(Status(referral.status)) if a in STAFF_ACTIONS],
    )


async def history_of(session: AsyncSession, referral_id: UUID) -> list[ReferralHistory]:
    return list(
        (
            await session.exec(
                select(ReferralHistory)
                .where(ReferralHistory.referral_id == referral_id)
                .order_by(col(ReferralHistory.id))
            )
        ).all()
    )


async def to_public(session: AsyncSession, referral: Referral, now: datetime) -> ReferralPublic:
    history = await history_of(session, referral.id)
    return ReferralPublic(
        **to_summary(referral, now).model_dump(),
        history=[HistoryEntryPublic.model_validate(step, from_attributes=True) for step in history],
    )


def household_ref(key: bytes, provider_id: UUID, household_id: UUID) -> str:
    """The household as one provider knows it: HMAC-SHA256 of provider and household ids,
    stable for that provider, unlinkable between providers, irreversible without the key."""
    digest = hmac.new(key, provider_id.bytes + household_id.bytes, hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode().lower()


def to_provider_view(
    referral: Referral,
    household: HouseholdView | None,
    history: Sequence[ReferralHistory],
    *,
    pseudonym_key: bytes,
    provider_id: UUID,
) -> ProviderReferralView:
    """Only what the provider needs: the one service referred, the household's language,
    size and area, and the household's pseudonym for ``provider_id`` (never its id). Other
    providers' steps, notes and reasons stay out."""
    own = [step for step in history if step.provider_id == referral.provider_id]
    return ProviderReferralView(
        id=referral.id,
        household_ref=household_ref(pseudonym_key, provider_id, referral.household_id),
        service_type=ServiceType(referral.service_type),
        urgency=Urgency(referral.urgency),
        status=Status(referral.status),
        provider_id=referral.provider_id,
        due_at=referral.due_at,
        sent_at=referral.sent_at,
        household=HouseholdBrief(
            admin1=household.admin1 if household else None,
            admin2=household.admin2 if household else None,
            preferred_language=household.preferred_language if household else None,
            household_size=household.household_size if household else None,
        ),
        allowed_actions=[
            a for a in allowed_actions(Status(referral.status)) if a in PROVIDER_ACTIONS
        ],
        history=[
            ProviderHistoryEntry(at=step.at, action=step.action, to_status=step.to_status)
            for step in own
        ],
    )


async def provider_views(
    session: AsyncSession,
    referrals: Sequence[Referral],
    *,
    principal: Principal,
    pseudonym_key: bytes,
) -> list[ProviderReferralView]:
    """The provider views of referrals with the caller's organisation."""
    org = provider_org(principal)
    if org is None:
        return []
    ids = list({r.household_id for r in referrals})
    households: dict[UUID, HouseholdView] = {}
    if ids:
        query = select(HouseholdView).where(col(HouseholdView.household_id).in_(ids))
        households = {h.household_id: h for h in (await session.exec(query)).all()}
    views = []
    for referral in referrals:
        history = await history_of(session, referral.id)
        household = households.get(referral.household_id)
        views.append(
            to_provider_view(
                referral, household, history, pseudonym_key=pseudonym_key, provider_id=org
            )
        )
    return views


async def page(
    session: AsyncSession,
    *,
    principal: Principal,
    now: datetime,
    after: UUID | None,
    limit: int,
    household_id: UUID | None = None,
    status: Status | None = None,
    service_type: ServiceType | None = None,
    provider_id: UUID | None = None,
    overdue: bool | None = None,
) -> list[Referral]:
    """The referrals the caller may see, filtered, oldest first; the listing is audited."""
    rows = await _find(
        session,
        principal=principal,
        now=now,
        after=after,
        limit=limit,
        household_id=household_id,
        status=status,
        service_type=service_type,
        provider_id=provider_id,
        overdue=overdue,
    )
    await record_audit(
        session,
        Actor(principal),
        action="referral.list",
        resource_type="referral",
        resource_id=None,
    )
    return rows


async def _find(
    session: AsyncSession,
    *,
    principal: Principal,
    now: datetime,
    after: UUID | None,
    limit: int,
    household_id: UUID | None = None,
    status: Status | None = None,
    service_type: ServiceType | None = None,
    provider_id: UUID | None = None,
    overdue: bool | None = None,
) -> list[Referral]:
    """The referrals the caller may see, filtered, oldest first."""
    query = select(Referral).order_by(col(Referral.id)).limit(limit)
    if sees_as_provider(principal):
        org = provider_org(principal)
        if org is None:
            return []
        query = query.where(Referral.provider_id == org)
    else:
        sites = visible_sites(principal)
        if sites is not None:
            query = query.where(col(Referral.site_id).in_(list(sites)))
        if not sees_every_sensitive(principal):  # see access.may_see
            query = query.where(
                sa.or_(
                    col(Referral.sensitive).is_(False),
                    col(Referral.caseworker_sub) == principal.sub,
                )
            )
    if after is not None:
        query = query.where(col(Referral.id) > after)
    if household_id is not None:
        query = query.where(Referral.household_id == household_id)
    if status is not None:
        query = query.where(Referral.status == status)
    if service_type is not None:
        query = query.where(Referral.service_type == service_type)
    if provider_id is not None:
        query = query.where(Referral.provider_id == provider_id)
    if overdue is not None:
        condition = sa.and_(
            col(Referral.status) == Status.SENT,
            col(Referral.due_at).is_not(None),
            col(Referral.due_at) <= now,
        )
        query = query.where(condition if overdue else sa.not_(condition))
    return list((await session.exec(query)).all())

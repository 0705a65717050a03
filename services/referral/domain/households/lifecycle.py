"""A household deactivated or erased in registration: what is cancelled, scrubbed, deleted."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import consent, referrals
from services.referral.domain.common import Actor, record_audit
from services.referral.domain.vocabulary import CancelReason, ConsentTaskStatus
from services.referral.models import HouseholdView, Referral, ReferralHistory
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
)
from shared.vocabulary import HouseholdStatus


async def deactivate(
    *, session: AsyncSession, event: HouseholdDeactivated, actor: Actor, at: datetime
) -> None:
    view = await referrals.lock_household(session, event.household_id)
    if view is not None and view.version > event.version:
        return  # a later reactivation already arrived
    await referrals.close_open_for_household(
        session=session,
        household_id=event.household_id,
        reason=CancelReason.HOUSEHOLD_DEACTIVATED,
        actor=actor,
        now=at,
    )
    await consent.close_tasks(
        session=session,
        household_id=event.household_id,
        status=ConsentTaskStatus.CLOSED,
        reason="household_deactivated",
        actor=actor,
        now=at,
    )
    # What caseworkers wrote about the household goes; the referrals' skeletons stay.
    await session.exec(
        sa.update(Referral)
        .where(col(Referral.household_id) == event.household_id)
        .values(reason=None, override_reason=None)
    )
    await _scrub_history_notes(session, event.household_id)
    if view is None:
        view = HouseholdView(
            household_id=event.household_id,
            site_id=event.site_id,
            status=HouseholdStatus.DEACTIVATED,
            version=event.version,
            updated_at=at,
        )
    view.site_id = event.site_id
    view.status = HouseholdStatus.DEACTIVATED
    view.version = max(view.version, event.version)
    view.referral_sharing = False
    view.admin1 = view.admin2 = view.preferred_language = None
    view.household_size = None
    view.profile = None
    view.updated_at = at
    session.add(view)
    await session.flush()
    await record_audit(
        session,
        actor,
        action="household.deactivate",
        resource_type="household",
        resource_id=event.household_id,
        reason=event.reason_code,
    )


async def _scrub_history_notes(session: AsyncSession, household_id: UUID) -> None:
    of_household = select(Referral.id).where(Referral.household_id == household_id)
    await session.exec(
        sa.update(ReferralHistory)
        .where(col(ReferralHistory.referral_id).in_(of_household))
        .values(note=None)
    )


async def erase(
    *, session: AsyncSession, event: HouseholdErased, actor: Actor, at: datetime
) -> None:
    await referrals.lock_household(session, event.household_id)
    await referrals.close_open_for_household(
        session=session,
        household_id=event.household_id,
        reason=CancelReason.HOUSEHOLD_ERASED,
        actor=actor,
        now=at,
    )
    # History rows go with their referral (ON DELETE CASCADE).
    await session.exec(sa.delete(Referral).where(col(Referral.household_id) == event.household_id))
    await consent.delete_for_household(session, event.household_id)
    await session.exec(
        sa.delete(HouseholdView).where(col(HouseholdView.household_id) == event.household_id)
    )
    await record_audit(
        session,
        actor,
        action="household.erase",
        resource_type="household",
        resource_id=event.household_id,
    )

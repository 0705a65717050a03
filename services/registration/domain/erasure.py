"""Erasure of a household's personal data at the person's request."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain import changes, idempotency, reviews
from services.registration.domain.views import Actor
from services.registration.models import Member, MemberDocument, ReviewResolution
from shared import outbox
from shared.events.catalog import CONTACTS
from shared.events.registration import HouseholdErased
from shared.outbox import outbox_table
from shared.vocabulary import HouseholdStatus

PERSONAL_FIELDS = (
    "admin1",
    "admin2",
    "settlement",
    "displacement_status",
    "arrival_date",
    "preferred_language",
    "phone",
    "consent_data_processing",
    "consent_referral_sharing",
    "consent_contact",
    "consent_given_at",
    "deactivation_reason",
)


async def erase(*, session: AsyncSession, household_id: UUID, actor: Actor, now: datetime) -> None:
    """Erase a household's personal data from every table of this service.

    The household row stays as a tombstone (id, case number, site, status `erased`); members,
    documents and dedup keys are deleted; idempotency records keep only a marker; contact
    details still waiting in the outbox are dropped. HouseholdErased tells every other
    service to do the same, and a tombstone clears the compacted contacts topic.
    """
    household = await changes.find_household(session, household_id, actor, for_update=True)
    await session.exec(
        sa.delete(MemberDocument).where(col(MemberDocument.household_id) == household.id)
    )
    await session.exec(sa.delete(Member).where(col(Member.household_id) == household.id))
    for name in PERSONAL_FIELDS:
        setattr(household, name, None)
    household.needs = []
    household.status = HouseholdStatus.ERASED
    household.erased_at = now
    changes.touch(household, now)
    await reviews.close_open_review(
        session=session,
        household_id=household.id,
        resolution=ReviewResolution.HOUSEHOLD_ERASED,
        now=now,
    )
    await _forget(session, household.id)
    await changes.record(session, actor, "household.erase", household.id)
    await session.flush()
    await outbox.add_event(
        session,
        HouseholdErased(household_id=household.id, site_id=household.site_id),
        key=str(household.id),
        source=changes.SOURCE,
        actor=actor.principal.sub,
        subject=f"household/{household.id}",
    )
    await changes.tombstone_contact(session, household.id)


async def _forget(session: AsyncSession, household_id: UUID) -> None:
    await idempotency.forget_household(session=session, household_id=household_id)
    # Contact cards still waiting in the outbox hold the phone: drop them (the tombstone
    # that follows clears what was already published).
    await session.exec(
        sa.delete(outbox_table).where(
            outbox_table.c.topic == CONTACTS.name, outbox_table.c.key == str(household_id)
        )
    )

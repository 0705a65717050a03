"""Erasure of a household's personal data at the person's request, with the households merged
into it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.domain import changes, idempotency, reviews
from services.registration.domain.views import Actor
from services.registration.models import Household, Member, MemberDocument, ReviewResolution
from shared import outbox
from shared.db import run
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
# Nulled too: not the person's data, but the tombstone keeps nothing it does not need.
ERASED_FIELDS = (*PERSONAL_FIELDS, "registered_by")
MERGED_REASON = "merged_into_erased"  # the audit reason of a household erased with its survivor


async def erase(*, session: AsyncSession, household_id: UUID, actor: Actor, now: datetime) -> None:
    """Erase a household's personal data from every table of this service, and with it every
    household merged into it (directly or through another: A <- B <- C), which holds the same
    people's names, documents and phone.

    Each household row stays as a tombstone (id, case number, site, status `erased`); members,
    documents and dedup keys are deleted; idempotency records keep only a marker; contact
    details still waiting in the outbox are dropped. A HouseholdErased for each tells every
    other service to do the same, and a tombstone for each clears the compacted contacts topic.
    """
    household = await changes.find_household(session, household_id, actor, for_update=True)
    merged = await _merged_into(session, household.id)
    await _erase_one(session, household, actor, now)
    for other in merged:
        await _erase_one(session, other, actor, now, reason=MERGED_REASON)


async def _merged_into(session: AsyncSession, household_id: UUID) -> list[Household]:
    """The households merged into this one, directly or not, not yet erased; locked in id
    order (as every change locks households)."""
    ids = list((await run(session, queries.MERGED_INTO, {"household_id": household_id})).scalars())
    if not ids:
        return []
    result = await session.exec(
        select(Household)
        .where(col(Household.id).in_(ids), col(Household.status) != HouseholdStatus.ERASED)
        .order_by(col(Household.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(result.all())


async def _erase_one(
    session: AsyncSession,
    household: Household,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
) -> None:
    await session.exec(
        sa.delete(MemberDocument).where(col(MemberDocument.household_id) == household.id)
    )
    await session.exec(sa.delete(Member).where(col(Member.household_id) == household.id))
    for name in ERASED_FIELDS:
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
    await changes.record(session, actor, "household.erase", household.id, reason=reason)
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

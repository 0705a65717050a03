"""The common steps of every change to a household: lock, check, bump, audit, announce."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import uuid6
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain.errors import (
    HouseholdErased,
    HouseholdNotEditable,
    HouseholdNotFound,
    HouseholdOutOfScope,
    IfMatchRequired,
    StaleVersion,
)
from services.registration.domain.profiles import ContactCard, profile
from services.registration.domain.views import Actor, load_members
from services.registration.models import Household, Member
from shared import audit, outbox
from shared.events.catalog import CONTACTS
from shared.events.envelope import new_event_id
from shared.events.registration import HouseholdProfile
from shared.vocabulary import HouseholdStatus

SERVICE = "registration"
SOURCE = f"haven/{SERVICE}"
EDITABLE_STATUSES = frozenset({HouseholdStatus.ACTIVE, HouseholdStatus.PENDING_REVIEW})


def new_id() -> UUID:
    """Time-ordered ids (UUIDv7): households list newest first by id."""
    return UUID(str(uuid6.uuid7()))


async def find_household(
    session: AsyncSession,
    household_id: UUID,
    actor: Actor,
    *,
    for_update: bool = False,
    candidate: bool = False,
) -> Household:
    """The household if the caller may see it: 404 otherwise (also for other sites), 410 if
    erased. A ``candidate`` of a review the caller decides may be at another site for those
    who review cross-site pairs (``Actor.sees_candidate_at``)."""
    query = select(Household).where(col(Household.id) == household_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    household = (await session.exec(query)).first()
    if household is None:
        raise HouseholdNotFound(f"No household {household_id} among your sites.")
    reachable = actor.sees_candidate_at if candidate else actor.can_access
    if not reachable(household.site_id):
        raise HouseholdOutOfScope(f"No household {household_id} among your sites.")
    if household.status == HouseholdStatus.ERASED:
        raise HouseholdErased(f"Household {household.case_number} has been erased.")
    return household


def check_version(household: Household, if_match: frozenset[int] | None) -> None:
    """If-Match must name the current version: 428 without it, 412 when stale."""
    if if_match is None:
        raise IfMatchRequired(
            'Send If-Match with the ETag you last read (e.g. If-Match: W/"3"), '
            "so that nobody's changes are overwritten."
        )
    if household.version not in if_match:
        raise StaleVersion(
            f"The household changed since you read it (it is now version {household.version}). "
            "Read it again and repeat your change.",
            current_version=household.version,
        )


async def household_for_change(
    session: AsyncSession,
    household_id: UUID,
    actor: Actor,
    *,
    if_match: frozenset[int] | None,
    require_if_match: bool = True,
) -> Household:
    """Lock the household for a change and check who, which version and which status."""
    household = await find_household(session, household_id, actor, for_update=True)
    if require_if_match or if_match is not None:
        check_version(household, if_match)
    if household.status not in EDITABLE_STATUSES:
        raise HouseholdNotEditable(
            f"Household {household.case_number} is {household.status} and cannot be changed."
        )
    return household


def touch(household: Household, now: datetime) -> None:
    household.version += 1
    household.updated_at = now


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    household_id: UUID,
    *,
    reason: str | None = None,
    outcome: audit.Outcome = audit.Outcome.SUCCESS,
) -> None:
    await audit.record(
        session,
        service=SERVICE,
        principal=actor.principal,
        action=action,
        resource_type="household",
        resource_id=str(household_id),
        outcome=outcome,
        reason=reason,
    )


async def announce(
    session: AsyncSession,
    event: type[HouseholdProfile],
    household: Household,
    actor: Actor,
    now: datetime,
    members: Sequence[Member] | None = None,
) -> None:
    """Flush the change, then stage its event with the full profile (consumers upsert)."""
    await session.flush()
    if members is None:
        members = await load_members(session, [household.id])
    await outbox.add_event(
        session,
        profile(event, household, members, now.date()),
        key=str(household.id),
        source=SOURCE,
        actor=actor.principal.sub,
        subject=f"household/{household.id}",
    )


async def announce_contact(
    session: AsyncSession, household: Household, before: ContactCard | None, actor: Actor
) -> None:
    """Publish the contact card when it changed with consent; a tombstone when consent went."""
    after = ContactCard.of(household)
    if after.consent and after != before:
        await session.flush()
        await outbox.add_event(
            session,
            after.payload(household),
            key=str(household.id),
            source=SOURCE,
            actor=actor.principal.sub,
            subject=f"household/{household.id}",
        )
    elif before is not None and before.consent and not after.consent:
        await tombstone_contact(session, household.id)


async def tombstone_contact(session: AsyncSession, household_id: UUID) -> None:
    await session.flush()
    await outbox.add_tombstone(
        session, topic=CONTACTS.name, key=str(household_id), event_id=new_event_id()
    )

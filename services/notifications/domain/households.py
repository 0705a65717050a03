"""What this service knows about households: contact details, site and case number, erasure.

Contact details come only from registration's compacted contacts topic. A tombstone (consent
withdrawn or household erased) deletes them, and beneficiary messages still waiting are
skipped. An erasure deletes everything about the household — contact, site, every
notification — and remembers only the pseudonymous id, so that late or replayed events
cannot bring anything back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications import queries
from services.notifications.domain.sql import execute
from services.notifications.models import (
    Audience,
    Contact,
    Erasure,
    HouseholdSite,
    Notification,
    SkipReason,
    Status,
    table_of,
)
from shared.db import run
from shared.events.registration import (
    HouseholdContact,
    HouseholdErased,
    HouseholdProfile,
    HouseholdsMerged,
)

log = logging.getLogger(__name__)

WAKE_CHANNEL = "haven_notifications"
WAITING = (Status.QUEUED, Status.FAILED)

notifications = table_of(Notification)


async def wake_senders(session: AsyncSession) -> None:
    """Tell sender loops (on commit) that something may be due now. Once per transaction is
    enough (PostgreSQL delivers one notification per channel and payload per transaction
    anyway): the events of a consumer batch share one."""
    transaction = session.sync_session.get_transaction()
    if transaction is not None and session.info.get(WAKE_CHANNEL) is transaction:
        return
    await run(session, queries.WAKE_SENDERS, {"channel": WAKE_CHANNEL})
    session.info[WAKE_CHANNEL] = transaction


_LOCKED = "haven_notifications_locked_households"


def _current_transaction(session: AsyncSession) -> object:
    sync = session.sync_session
    return sync.get_nested_transaction() or sync.get_transaction()


def _already_locked(session: AsyncSession, household_id: UUID) -> bool:
    """Whether this transaction (savepoint) holds the household's lock already."""
    held = session.info.get(_LOCKED)
    return held is not None and held[0] is _current_transaction(session) and household_id in held[1]


def _held(session: AsyncSession, household_id: UUID) -> None:
    transaction = _current_transaction(session)
    held: tuple[object, set[UUID]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = session.info[_LOCKED] = (transaction, set())
    held[1].add(household_id)


async def lock_household(session: AsyncSession, household_id: UUID) -> None:
    """Serialise this transaction with others about the same household (until it ends). The
    contacts topic and the households topic are consumed concurrently: without it, a contact
    and a registration handled at the same moment each miss the other's uncommitted row, and
    the confirmation waits for its contact deadline (15 minutes); an erasure, a withdrawn
    contact or a merge would miss a message being queued.
    Taken once per transaction: the events of a consumer batch share it."""
    if _already_locked(session, household_id):
        return
    await run(session, queries.LOCK_HOUSEHOLD, {"key": str(household_id)})
    _held(session, household_id)


async def lock_households(session: AsyncSession, household_ids: Iterable[UUID]) -> None:
    """:func:`lock_household` for several households at once (those this transaction does
    not hold yet), in one statement, in a stable order."""
    wanted = sorted({h for h in household_ids if not _already_locked(session, h)})
    if not wanted:
        return
    if len(wanted) == 1:
        await run(session, queries.LOCK_HOUSEHOLD, {"key": str(wanted[0])})
    else:
        await run(session, queries.LOCK_HOUSEHOLDS, {"household_ids": wanted})
    for household_id in wanted:
        _held(session, household_id)


async def is_erased(*, session: AsyncSession, household_id: UUID) -> bool:
    return await session.get(Erasure, household_id) is not None


async def save_contact(*, session: AsyncSession, contact: HouseholdContact, at: datetime) -> None:
    """Upsert a household's contact (not after its erasure); messages waiting for it become
    due at once."""
    await lock_household(session, contact.household_id)
    woken = await run(
        session,
        queries.SAVE_CONTACT,
        {
            "household_id": contact.household_id,
            "case_number": contact.case_number,
            "site_id": contact.site_id,
            "phone": contact.phone,
            "language": contact.preferred_language,
            "contact_consent": contact.contact_consent,
            "now": at,
        },
    )
    if woken.rowcount:  # type: ignore[attr-defined]
        await wake_senders(session)


async def forget_contact(*, session: AsyncSession, household_id: UUID, at: datetime) -> None:
    """A tombstone: delete the contact and skip the household's messages not yet sent."""
    await lock_household(session, household_id)  # so a message being queued is seen
    await execute(session, sa.delete(Contact).where(col(Contact.household_id) == household_id))
    await execute(
        session,
        notifications.update()
        .where(
            notifications.c.household_id == household_id,
            notifications.c.audience == Audience.BENEFICIARY,
            notifications.c.status.in_(WAITING),
        )
        .values(
            status=Status.SKIPPED,
            skip_reason=SkipReason.CONTACT_WITHDRAWN,
            updated_at=at,
        ),
    )
    # The masked number goes too: the household no longer agrees to be contacted.
    await execute(
        session,
        notifications.update()
        .where(notifications.c.household_id == household_id)
        .values(recipient_masked=None),
    )


async def apply_profiles(*, session: AsyncSession, profiles: Sequence[HouseholdProfile]) -> None:
    """Keep each household's site, case number and contact-consent flag (newest version
    wins; an erased household stays erased), and take the households' locks (see
    :func:`lock_household`) in the same statement. The profiles must be of distinct
    households (see :func:`shared.consumer.distinct_runs`). Registration publishes a contact
    only with consent, so the flag lets a message be skipped as ``no_consent`` at once
    instead of waiting for a contact that will not come."""
    if not profiles:
        return
    if len({p.household_id for p in profiles}) != len(profiles):
        raise ValueError("apply_profiles takes each household at most once")
    await run(
        session,
        queries.UPSERT_SITES_AND_LOCK,
        {
            "household_ids": [p.household_id for p in profiles],
            "site_ids": [p.site_id for p in profiles],
            "case_numbers": [p.case_number for p in profiles],
            "contact_consents": [p.consent.contact for p in profiles],
            "versions": [p.version for p in profiles],
        },
    )
    for profile in profiles:
        _held(session, profile.household_id)


async def site_of(*, session: AsyncSession, household_id: UUID) -> HouseholdSite | None:
    return await session.get(HouseholdSite, household_id)


async def erase(*, session: AsyncSession, event: HouseholdErased, at: datetime) -> None:
    """Delete everything about the household here; remember only that it was erased."""
    household_id = event.household_id
    await lock_household(session, household_id)  # so a message being queued is deleted too
    await execute(
        session,
        insert(table_of(Erasure))
        .values(household_id=household_id, erased_at=at)
        .on_conflict_do_nothing(),
    )
    await execute(session, sa.delete(Contact).where(col(Contact.household_id) == household_id))
    await execute(
        session,
        sa.delete(HouseholdSite).where(col(HouseholdSite.household_id) == household_id),
    )
    deleted = await execute(
        session, notifications.delete().where(notifications.c.household_id == household_id)
    )
    log.info("household erased", extra={"notifications_deleted": deleted.rowcount})  # type: ignore[attr-defined]


async def merge(*, session: AsyncSession, event: HouseholdsMerged, at: datetime) -> None:
    """Fold ``merged_id`` into ``surviving_id``: its history moves, its pending messages are
    skipped (they were about a case number that no longer exists)."""
    surviving_id, merged_id = event.surviving_id, event.merged_id
    await lock_households(session, (surviving_id, merged_id))  # messages being queued too
    await execute(
        session,
        notifications.update()
        .where(
            notifications.c.household_id == merged_id,
            notifications.c.audience == Audience.BENEFICIARY,
            notifications.c.status.in_(WAITING),
        )
        .values(status=Status.SKIPPED, skip_reason=SkipReason.MERGED, updated_at=at),
    )
    await execute(
        session,
        notifications.update()
        .where(notifications.c.household_id == merged_id)
        .values(household_id=surviving_id),
    )
    await execute(session, sa.delete(Contact).where(col(Contact.household_id) == merged_id))
    await execute(
        session,
        sa.delete(HouseholdSite).where(col(HouseholdSite.household_id) == merged_id),
    )

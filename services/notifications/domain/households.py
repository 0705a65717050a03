"""What this service knows about households: contact details, site and case number, erasure.

Contact details come only from registration's compacted contacts topic. A tombstone (consent
withdrawn or household erased) deletes them, and beneficiary messages still waiting are
skipped. An erasure deletes everything about the household — contact, site, every
notification — and remembers only the pseudonymous id, so that late or replayed events
cannot bring anything back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

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
from shared.events.registration import HouseholdContact, HouseholdProfile

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
    await execute(session, sa.select(sa.func.pg_notify(WAKE_CHANNEL, "")))
    session.info[WAKE_CHANNEL] = transaction


_LOCK_HOUSEHOLD = sa.select(
    sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(sa.bindparam("key", type_=sa.Text), 0))
)


async def lock_household(session: AsyncSession, household_id: UUID) -> None:
    """Serialise this transaction with others about the same household's contact (until it
    ends). The contacts topic and the households topic are consumed concurrently: without it,
    a contact and a registration handled at the same moment each miss the other's
    uncommitted row, and the confirmation waits for its contact deadline (15 minutes)."""
    await execute(session, _LOCK_HOUSEHOLD, {"key": str(household_id)})


async def is_erased(*, session: AsyncSession, household_id: UUID) -> bool:
    return await session.get(Erasure, household_id) is not None


# Built once: the contact is saved (unless the household was erased) and the household's
# confirmations waiting for it made due, in one statement. It runs after lock_household, in
# its own statement, so its snapshot sees whatever the lock's previous holder committed.
_SAVE_CONTACT = sa.text(
    """
    WITH saved AS (
        INSERT INTO notification_contact
            (household_id, case_number, site_id, phone, language, contact_consent, updated_at)
        SELECT CAST(:household_id AS uuid), CAST(:case_number AS text), CAST(:site_id AS text),
               CAST(:phone AS text), CAST(:language AS text), CAST(:contact_consent AS boolean),
               CAST(:now AS timestamptz)
        WHERE NOT EXISTS (
            SELECT 1 FROM notification_erasure
            WHERE household_id = CAST(:household_id AS uuid)
        )
        ON CONFLICT (household_id) DO UPDATE SET
            case_number = excluded.case_number, site_id = excluded.site_id,
            phone = excluded.phone, language = excluded.language,
            contact_consent = excluded.contact_consent, updated_at = excluded.updated_at
        RETURNING household_id
    )
    UPDATE notification
    SET next_attempt_at = CAST(:now AS timestamptz), updated_at = CAST(:now AS timestamptz)
    WHERE household_id IN (SELECT household_id FROM saved)
      AND audience = 'beneficiary' AND status = 'queued' AND attempts = 0
      AND next_attempt_at > CAST(:now AS timestamptz)
    """
)


async def save_contact(*, session: AsyncSession, contact: HouseholdContact, now: datetime) -> None:
    """Upsert a household's contact (not after its erasure); messages waiting for it become
    due at once."""
    await lock_household(session, contact.household_id)
    woken = await execute(
        session,
        _SAVE_CONTACT,
        {
            "household_id": contact.household_id,
            "case_number": contact.case_number,
            "site_id": contact.site_id,
            "phone": contact.phone,
            "language": contact.preferred_language,
            "contact_consent": contact.contact_consent,
            "now": now,
        },
    )
    if woken.rowcount:  # type: ignore[attr-defined]
        await wake_senders(session)


async def forget_contact(*, session: AsyncSession, household_id: UUID, now: datetime) -> None:
    """A tombstone: delete the contact and skip the household's messages not yet sent."""
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
            updated_at=now,
        ),
    )
    # The masked number goes too: the household no longer agrees to be contacted.
    await execute(
        session,
        notifications.update()
        .where(notifications.c.household_id == household_id)
        .values(recipient_masked=None),
    )


_SITE_COLUMNS = ("household_id", "site_id", "case_number", "contact_consent", "version")


def _upsert_site() -> sa.Insert:
    """Insert or update the household's site row, unless it was erased or a newer version is
    held: one statement, built once (events only bind values)."""
    table, erased = table_of(HouseholdSite), table_of(Erasure)
    values = [sa.bindparam(name, type_=table.c[name].type) for name in _SITE_COLUMNS]
    not_erased = ~sa.exists().where(erased.c.household_id == values[0])
    statement = insert(table).from_select(list(_SITE_COLUMNS), sa.select(*values).where(not_erased))
    return statement.on_conflict_do_update(
        index_elements=["household_id"],
        set_={name: statement.excluded[name] for name in _SITE_COLUMNS[1:]},
        where=table.c.version <= statement.excluded.version,
    )


_UPSERT_SITE = _upsert_site()


async def remember_site(*, session: AsyncSession, profile: HouseholdProfile) -> None:
    """Keep the household's site, case number and contact-consent flag (newest version
    wins). Registration publishes a contact only with consent, so the flag lets a message be
    skipped as ``no_consent`` at once instead of waiting for a contact that will not come."""
    connection = await session.connection()
    await connection.execute(
        _UPSERT_SITE,
        {
            "household_id": profile.household_id,
            "site_id": profile.site_id,
            "case_number": profile.case_number,
            "contact_consent": profile.consent.contact,
            "version": profile.version,
        },
    )


async def site_of(*, session: AsyncSession, household_id: UUID) -> HouseholdSite | None:
    return await session.get(HouseholdSite, household_id)


@dataclass(frozen=True)
class Known:
    """Everything this service holds about one household, read in one query."""

    erased: bool
    contact: Contact | None
    site: HouseholdSite | None


def _known_query() -> Select[bool, Contact, HouseholdSite]:
    key = sa.select(sa.bindparam("household_id", type_=sa.Uuid).label("id")).subquery("k")
    erased = sa.exists().where(col(Erasure.household_id) == key.c.id).label("erased")
    return (
        select(erased, Contact, HouseholdSite)
        .select_from(key)
        .outerjoin(Contact, col(Contact.household_id) == key.c.id)
        .outerjoin(HouseholdSite, col(HouseholdSite.household_id) == key.c.id)
    )


_KNOWN = _known_query()


async def known(*, session: AsyncSession, household_id: UUID) -> Known:
    """Whether the household was erased, its contact and its site row (each maybe absent)."""
    erased, contact, site = (
        await session.exec(_KNOWN, params={"household_id": household_id})
    ).one()
    return Known(bool(erased), contact, site)


async def erase(*, session: AsyncSession, household_id: UUID, now: datetime) -> None:
    """Delete everything about the household here; remember only that it was erased."""
    await execute(
        session,
        insert(table_of(Erasure))
        .values(household_id=household_id, erased_at=now)
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


async def merge(
    *, session: AsyncSession, surviving_id: UUID, merged_id: UUID, now: datetime
) -> None:
    """Fold ``merged_id`` into ``surviving_id``: its history moves, its pending messages are
    skipped (they were about a case number that no longer exists)."""
    await execute(
        session,
        notifications.update()
        .where(
            notifications.c.household_id == merged_id,
            notifications.c.audience == Audience.BENEFICIARY,
            notifications.c.status.in_(WAITING),
        )
        .values(status=Status.SKIPPED, skip_reason=SkipReason.MERGED, updated_at=now),
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

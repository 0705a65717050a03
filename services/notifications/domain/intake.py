"""Turning events into notifications: one row per (event, recipient, channel), never two.

Beneficiary messages (SMS) are addressed to the household, not to a number: the number,
the language and the consent are read from the contact when the message is sent, so a
withdrawal or a new number arriving in between is honoured. When the contact is not known
yet (the contacts topic is separate, so it may arrive after the event), the message waits:
``queued`` with ``next_attempt_at`` = ``contact_deadline`` = now + ``contact_wait_seconds``.
The contact's arrival makes it due at once; if the deadline passes first it is ``skipped``
with reason ``no_contact``.

Staff messages are addressed to every matching directory entry at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications import queries
from services.notifications.domain import households, recipients
from services.notifications.domain.masking import mask
from services.notifications.domain.messages import MESSAGES, MessageKind
from services.notifications.domain.sql import execute
from services.notifications.models import (
    Audience,
    Notification,
    Status,
    table_of,
)
from services.notifications.settings import NotificationsSettings, StaffRole
from shared.consumer import acting_on, distinct_runs
from shared.db import run
from shared.events.distribution import StockLow
from shared.events.envelope import Envelope, EventPayload, new_event_id
from shared.events.referral import ReferralEscalated, ReferralOverdue
from shared.events.registration import DuplicateReviewRequested, HouseholdRegistered

log = logging.getLogger(__name__)

notifications = table_of(Notification)


_INSERTED_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "household_id",
    "site_id",
    "audience",
    "recipient_key",
    "channel",
    "address",
    "recipient_masked",
    "language",
    "context",
    "status",
    "skip_reason",
    "attempts",
    "next_attempt_at",
    "contact_deadline",
    "created_at",
    "updated_at",
)
# Built once (every event queues one): calls only bind values.
_INSERT = (
    insert(notifications)
    .values(
        {name: sa.bindparam(name, type_=notifications.c[name].type) for name in _INSERTED_COLUMNS}
    )
    .on_conflict_do_nothing(constraint="notification_once")
    .returning(notifications.c.id)
)
_NOT_SET = dict.fromkeys(_INSERTED_COLUMNS)


async def _insert(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Insert unless the (event, recipient, channel) row exists; True when inserted."""
    unknown = row.keys() - _NOT_SET.keys()
    if unknown:
        raise ValueError(f"not a queued notification's column: {sorted(unknown)}")
    result = await execute(session, _INSERT, _NOT_SET | row)
    return result.first() is not None


def _base_row(
    kind: MessageKind, envelope: Envelope[Any], *, now: datetime, site_id: str | None
) -> dict[str, Any]:
    return {
        "id": new_event_id(),
        "event_id": envelope.id,
        "event_type": kind.event_type,
        "site_id": site_id,
        "audience": kind.audience,
        "status": Status.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def for_beneficiaries(
    *,
    session: AsyncSession,
    envelopes: Sequence[Envelope[Any]],
    settings: NotificationsSettings,
    now: datetime,
) -> None:
    """Queue each event's SMS to its household (``data.household_id``): waiting for the
    contact when none arrived yet, skipped at once when it cannot be sent, nothing when the
    household was erased. The households' locks first, then one statement for them all."""
    if not envelopes:
        return
    household_ids: list[UUID] = [envelope.data.household_id for envelope in envelopes]
    await households.lock_households(session, household_ids)
    kinds = [MESSAGES[envelope.type] for envelope in envelopes]
    sites = [getattr(envelope.data, "site_id", None) for envelope in envelopes]
    await run(
        session,
        queries.QUEUE_FOR_BENEFICIARIES,
        {
            "ids": [new_event_id() for _ in envelopes],
            "event_ids": [envelope.id for envelope in envelopes],
            "event_types": [kind.event_type for kind in kinds],
            "household_ids": household_ids,
            "site_ids": [site if isinstance(site, str) else None for site in sites],
            "recipient_keys": [recipients.beneficiary_key(h) for h in household_ids],
            "contexts": [
                json.dumps(kind.context(envelope.data))
                for kind, envelope in zip(kinds, envelopes, strict=True)
            ],
            "deadline": now + timedelta(seconds=settings.contact_wait_seconds),
            "now": now,
            "wake_channel": households.WAKE_CHANNEL,
        },
    )


async def for_staff(
    *,
    session: AsyncSession,
    envelope: Envelope[Any],
    role: StaffRole,
    site_id: str | None,
    now: datetime,
    household_id: UUID | None = None,
    provider_id: UUID | None = None,
    staff_sub: str | None = None,
) -> int:
    """Queue the alert for every directory entry of ``role``; return how many were queued."""
    kind = MESSAGES[envelope.type]
    if household_id is not None and await households.is_erased(
        session=session, household_id=household_id
    ):
        return 0
    household = (
        await households.site_of(session=session, household_id=household_id)
        if household_id
        else None
    )
    site_id = site_id or (household.site_id if household else None)
    targets = await recipients.staff_for(
        session=session,
        role=role,
        site_id=site_id,
        provider_id=provider_id,
        staff_sub=staff_sub,
    )
    if not targets:
        log.warning(
            "no staff recipient for an alert",
            extra={"event_type": kind.event_type, "role": role, "site_id": site_id},
        )
        return 0
    context = kind.context(envelope.data) | {
        "case_number": household.case_number if household else None,
        "site_id": site_id,
    }
    queued = 0
    for target in targets:
        row = _base_row(kind, envelope, now=now, site_id=site_id) | {
            "household_id": household_id,
            "recipient_key": recipients.staff_key(target.channel, target.address),
            "channel": target.channel,
            "address": target.address,
            "recipient_masked": mask(target.channel, target.address),
            "language": target.language,
            "context": context,
        }
        queued += await _insert(session, row)
    if queued:
        await households.wake_senders(session)
    return queued


@dataclass(frozen=True)
class StaffRoute:
    """Who hears about a staff event."""

    role: StaffRole
    site_id: str | None
    household_id: UUID | None = None
    provider_id: UUID | None = None
    staff_sub: str | None = None


def staff_route(payload: EventPayload, settings: NotificationsSettings) -> StaffRoute:
    """Stock alerts go to the site's warehouse managers, duplicate reviews to its field
    supervisors; an overdue referral to ``overdue_role``; an escalation to the audience the
    referral service names (provider, caseworker, manager), else by tier."""
    if isinstance(payload, StockLow):
        return StaffRoute(StaffRole.WAREHOUSE_MANAGER, payload.site_id)
    if isinstance(payload, DuplicateReviewRequested):
        return StaffRoute(StaffRole.FIELD_SUPERVISOR, payload.site_id, payload.household_id)
    if isinstance(payload, ReferralEscalated):
        named = settings.escalation_audiences.get(payload.audience or "")
        return StaffRoute(
            named or settings.escalation_role(payload.tier),
            payload.site_id,
            payload.household_id,
            payload.provider_id,
            payload.caseworker_sub,
        )
    if isinstance(payload, ReferralOverdue):
        return StaffRoute(
            settings.overdue_role, payload.site_id, payload.household_id, payload.provider_id
        )
    raise ValueError(f"{payload.event_type} is not a staff alert")


async def notify(
    *,
    session: AsyncSession,
    envelope: Envelope[Any],
    settings: NotificationsSettings,
    now: datetime,
) -> None:
    """The notifications an event causes, queued in the caller's (inbox) transaction."""
    await notify_all(session=session, envelopes=[envelope], settings=settings, now=now)


async def notify_all(
    *,
    session: AsyncSession,
    envelopes: Sequence[Envelope[Any]],
    settings: NotificationsSettings,
    now: datetime,
) -> None:
    """The notifications some events cause, queued in the caller's (inbox) transaction: the
    households' SMS together (:func:`for_beneficiaries`), staff alerts one event at a time.
    Queueing changes nothing that deciding reads (contacts, sites, erasures, the directory),
    so the order in which they are queued does not matter."""
    beneficiary = [e for e in envelopes if MESSAGES[e.type].audience is Audience.BENEFICIARY]
    await for_beneficiaries(session=session, envelopes=beneficiary, settings=settings, now=now)
    for envelope in envelopes:
        if MESSAGES[envelope.type].audience is Audience.BENEFICIARY:
            continue
        route = staff_route(envelope.data, settings)
        with acting_on(envelope):  # its correlation id and trace, as a handler of one event
            await for_staff(
                session=session,
                envelope=envelope,
                role=route.role,
                site_id=route.site_id,
                now=now,
                household_id=route.household_id,
                provider_id=route.provider_id,
                staff_sub=route.staff_sub,
            )


async def take_profiles(
    *,
    session: AsyncSession,
    envelopes: Sequence[Envelope[Any]],
    settings: NotificationsSettings,
    now: datetime,
) -> None:
    """Household profile events, in order: each run of distinct households
    (:func:`shared.consumer.distinct_runs`) as one statement keeping their sites and taking
    their locks (:func:`households.apply_profiles`), then one queueing the confirmation SMS
    of the run's ``HouseholdRegistered`` events. The same effects as the events one by one:
    within a run no event reads what another household's event writes."""
    for distinct in distinct_runs(envelopes, key=lambda envelope: envelope.data.household_id):
        await households.apply_profiles(
            session=session, profiles=[envelope.data for envelope in distinct]
        )
        registered = [e for e in distinct if isinstance(e.data, HouseholdRegistered)]
        await for_beneficiaries(session=session, envelopes=registered, settings=settings, now=now)

"""Kafka handlers of the notifications service: decode, call the domain, idempotently.

Each handler runs in the consumer's inbox transaction, so an event's notifications are
queued exactly once however often it is delivered (and the table's unique key
(event_id, recipient_key, channel) holds even without the inbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications.domain import households, intake
from services.notifications.settings import NotificationsSettings
from shared.consumer import EventConsumer
from shared.events.catalog import CONTACTS
from shared.events.distribution import DistributionRecorded, ShelterAllocated, StockLow
from shared.events.envelope import Envelope
from shared.events.referral import (
    ReferralAccepted,
    ReferralEscalated,
    ReferralOverdue,
    ReferralSent,
)
from shared.events.registration import (
    DuplicateReviewRequested,
    HouseholdContact,
    HouseholdErased,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)
from shared.service import ServiceRuntime

MESSAGE_EVENTS = (
    DistributionRecorded,
    ShelterAllocated,
    ReferralSent,
    ReferralAccepted,
    StockLow,
    DuplicateReviewRequested,
    ReferralOverdue,
    ReferralEscalated,
)


def register(consumer: EventConsumer, runtime: ServiceRuntime[NotificationsSettings]) -> None:
    """Register this service's event handlers; they read the runtime's settings and clock."""
    settings, clock = runtime.settings, runtime.clock

    @consumer.on_batch(HouseholdRegistered, HouseholdUpdated, NeedsAssessed, VulnerabilitiesFlagged)
    async def household_profiles(session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
        await intake.take_profiles(
            session=session, envelopes=envelopes, settings=settings, now=clock()
        )

    @consumer.on_batch(*MESSAGE_EVENTS)
    async def message_events(session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
        await intake.notify_all(
            session=session, envelopes=envelopes, settings=settings, now=clock()
        )

    @consumer.on(HouseholdContact)
    async def contact(session: AsyncSession, envelope: Envelope[HouseholdContact]) -> None:
        await households.save_contact(session=session, contact=envelope.data, at=clock())

    @consumer.on_tombstone(CONTACTS)
    async def contact_removed(session: AsyncSession, key: str) -> None:
        household_id = _uuid_key(key)
        if household_id is not None:
            await households.forget_contact(session=session, household_id=household_id, at=clock())

    @consumer.on(HouseholdErased)
    async def erased(session: AsyncSession, envelope: Envelope[HouseholdErased]) -> None:
        await households.erase(session=session, event=envelope.data, at=clock())

    @consumer.on(HouseholdsMerged)
    async def merged(session: AsyncSession, envelope: Envelope[HouseholdsMerged]) -> None:
        await households.merge(session=session, event=envelope.data, at=clock())


def _uuid_key(key: str) -> UUID | None:
    """A tombstone's key is the household id; anything else erases nothing here."""
    try:
        return UUID(key)
    except ValueError:
        return None

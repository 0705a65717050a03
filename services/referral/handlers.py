"""Kafka handlers of the referral service: decode, call the domain, idempotently.

Registration's household events keep the read model and trigger automatic referrals,
consent follow-ups, cancellations, erasure and merges (see ``domain/households.py``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.context import ReferralContext
from services.referral.domain import households
from services.referral.domain.common import SYSTEM, Actor
from shared.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdProfile,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)


def _actor(envelope: Envelope[Any]) -> Actor:
    """The service acts, because of this event."""
    return Actor(SYSTEM, causation_id=str(envelope.id))


def register(consumer: EventConsumer, context: ReferralContext | None = None) -> None:
    """Register this service's event handlers."""
    context = context or ReferralContext()

    @consumer.on(HouseholdRegistered, HouseholdUpdated, NeedsAssessed, VulnerabilitiesFlagged)
    async def on_profile(session: AsyncSession, envelope: Envelope[HouseholdProfile]) -> None:
        await households.apply_profile(
            session=session,
            profile=envelope.data,
            actor=_actor(envelope),
            now=context.now(),
            settings=context.settings,
        )

    @consumer.on(HouseholdDeactivated)
    async def on_deactivated(
        session: AsyncSession, envelope: Envelope[HouseholdDeactivated]
    ) -> None:
        await households.deactivate(
            session=session, event=envelope.data, actor=_actor(envelope), now=context.now()
        )

    @consumer.on(HouseholdErased)
    async def on_erased(session: AsyncSession, envelope: Envelope[HouseholdErased]) -> None:
        await households.erase(
            session=session, event=envelope.data, actor=_actor(envelope), now=context.now()
        )

    @consumer.on(HouseholdsMerged)
    async def on_merged(session: AsyncSession, envelope: Envelope[HouseholdsMerged]) -> None:
        await households.merge(
            session=session, event=envelope.data, actor=_actor(envelope), now=context.now()
        )

"""Kafka handlers of the referral service: decode, call the domain, idempotently.

Registration's household events keep the read model and trigger automatic referrals,
consent follow-ups, cancellations, erasure and merges (see ``domain/households/``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import households
from services.referral.domain.common import caused_by
from services.referral.settings import ReferralSettings
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
from shared.service import ServiceRuntime


def register(consumer: EventConsumer, runtime: ServiceRuntime[ReferralSettings]) -> None:
    """Register this service's event handlers; they read the runtime's settings and clock."""
    settings, clock = runtime.settings, runtime.clock

    @consumer.on_batch(HouseholdRegistered, HouseholdUpdated, NeedsAssessed, VulnerabilitiesFlagged)
    async def on_profiles(
        session: AsyncSession, envelopes: Sequence[Envelope[HouseholdProfile]]
    ) -> None:
        await households.apply_profiles(
            session=session,
            events=[households.ProfileEvent.of(envelope, clock()) for envelope in envelopes],
            settings=settings,
        )

    @consumer.on(HouseholdDeactivated)
    async def on_deactivated(
        session: AsyncSession, envelope: Envelope[HouseholdDeactivated]
    ) -> None:
        await households.deactivate(
            session=session, event=envelope.data, actor=caused_by(envelope), at=clock()
        )

    @consumer.on(HouseholdErased)
    async def on_erased(session: AsyncSession, envelope: Envelope[HouseholdErased]) -> None:
        await households.erase(
            session=session, event=envelope.data, actor=caused_by(envelope), at=clock()
        )

    @consumer.on(HouseholdsMerged)
    async def on_merged(session: AsyncSession, envelope: Envelope[HouseholdsMerged]) -> None:
        await households.merge(
            session=session, event=envelope.data, actor=caused_by(envelope), at=clock()
        )

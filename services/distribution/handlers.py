"""Kafka handlers of the distribution service: decode, call the domain, idempotently.

Registration's household events keep the household read model up to date. The inbox drops
redelivered events; the domain makes each effect safe in any state of the read model. Profile
events come together, a batch's consecutive ones at a time, and are applied set-based.
"""

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain import households
from services.distribution.domain.policy import load_policies
from services.distribution.settings import DistributionSettings
from shared.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)
from shared.service import ServiceRuntime


async def on_deactivated(session: AsyncSession, envelope: Envelope[HouseholdDeactivated]) -> None:
    await households.deactivate(session=session, event=envelope.data, at=envelope.time)


async def on_merged(session: AsyncSession, envelope: Envelope[HouseholdsMerged]) -> None:
    await households.merge(session=session, event=envelope.data, at=envelope.time)


async def on_erased(session: AsyncSession, envelope: Envelope[HouseholdErased]) -> None:
    await households.erase(session=session, event=envelope.data, at=envelope.time)


def register(consumer: EventConsumer, runtime: ServiceRuntime[DistributionSettings]) -> None:
    """Register this service's event handlers. They need no clock (an event's effect is dated
    by the event's own time); profiles keep only what the entitlement policy uses."""
    policies = load_policies(runtime.settings.policy_dir)

    @consumer.on_batch(HouseholdRegistered, HouseholdUpdated, NeedsAssessed, VulnerabilitiesFlagged)
    async def on_profiles(session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
        await households.apply_profiles(
            session=session,
            events=[households.ProfileEvent(env.data, env.time) for env in envelopes],
            policies=policies,
        )

    consumer.on(HouseholdDeactivated)(on_deactivated)
    consumer.on(HouseholdsMerged)(on_merged)
    consumer.on(HouseholdErased)(on_erased)

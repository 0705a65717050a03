"""Household lifecycle events that touch more than the read model: merges and erasures."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.households.view import (
    is_erased,
    lock_households,
    merge_histories,
    strip_household,
)
from services.distribution.models import ShelterAllocation
from shared import audit
from shared.auth import Principal
from shared.events.registration import HouseholdErased, HouseholdsMerged

SERVICE = "distribution"
REGISTRATION_EVENTS = Principal(
    sub="haven/distribution/registration-events", roles=frozenset(), sites=frozenset()
)


async def erase(*, session: AsyncSession, event: HouseholdErased, at: datetime) -> None:
    """Delete the household's read-model row, free any beds it holds (ShelterReleased), and
    strip its id from distributions and allocations; ledger quantities stay untouched."""
    await _erase(session, event.household_id, at)
    await _audit(session, "household.erase", event.household_id)


async def merge(*, session: AsyncSession, event: HouseholdsMerged, at: datetime) -> None:
    """Move the merged household's history to the survivor (or, when the survivor was erased
    already, erase the merged household's history too)."""
    if event.surviving_id == event.merged_id:
        return
    if await is_erased(session, event.surviving_id):
        await _erase(session, event.merged_id, at)
    else:
        await merge_histories(session=session, event=event, at=at)
    await _audit(session, "household.merge", event.merged_id)


async def _audit(session: AsyncSession, action: str, household_id: UUID) -> None:
    await audit.record(
        session,
        service=SERVICE,
        principal=REGISTRATION_EVENTS,
        action=action,
        resource_type="household",
        resource_id=str(household_id),
    )


async def _erase(session: AsyncSession, household_id: UUID, at: datetime) -> None:
    await lock_households(session, household_id)
    # Imported here: shelter rules read households, so shelter cannot be imported with them.
    from services.distribution.domain.shelter import release_all_for_household

    await release_all_for_household(session=session, household_id=household_id, at=at)
    await strip_household(session=session, household_id=household_id, at=at)
    await session.exec(
        sa.update(ShelterAllocation)
        .where(col(ShelterAllocation.household_id) == household_id)
        .values(household_id=None)
    )

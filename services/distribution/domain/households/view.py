"""The household read model, built from registration's events, and the household lock.

Registration owns households; this service keeps the pseudonymous picture it needs for
entitlements (site, size, needs, the vulnerabilities a policy rule names, status). Events
may arrive in any state of this model: profiles apply only when their version is newer, a
merge or an erasure of a household never seen here still takes effect, and an erased
household's id is remembered (nothing else) so a late profile event cannot bring it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution import queries
from services.distribution.domain.errors import (
    HouseholdNotActive,
    HouseholdNotKnownYet,
    HouseholdOutOfScope,
)
from services.distribution.domain.policy import PolicyBook
from services.distribution.models import (
    Distribution,
    DistributionLine,
    ErasedHousehold,
    HouseholdView,
    Prescription,
    ShelterAllocation,
)
from shared.auth import Principal
from shared.consumer import distinct_runs
from shared.db import run
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdProfile,
    HouseholdsMerged,
)
from shared.vocabulary import HouseholdStatus

MERGED = HouseholdStatus.MERGED.value
# Once merged, a household stays merged whatever later profile events say.
_KEEP_MERGED = sa.case(
    (col(HouseholdView.status) == MERGED, MERGED),
    else_=sa.literal_column("excluded.status"),
)


async def is_erased(session: AsyncSession, household_id: UUID) -> bool:
    found = await session.scalar(
        select(col(ErasedHousehold.household_id)).where(
            col(ErasedHousehold.household_id) == household_id
        )
    )
    return found is not None


@dataclass(frozen=True)
class ProfileEvent:
    """A household profile as one event carried it, and when that event happened."""

    profile: HouseholdProfile
    at: datetime


def profile_row(event: ProfileEvent, *, kept_vulnerabilities: frozenset[str]) -> dict[str, Any]:
    """The read-model row a profile event describes (JSON-ready): only what entitlements use.
    Of the members' vulnerabilities it keeps those in ``kept_vulnerabilities`` (the ones the
    policy names); members themselves (sex, age band, head) are not kept: no rule uses them."""
    profile = event.profile
    flagged = {v.value for member in profile.members for v in member.vulnerabilities}
    return {
        "household_id": str(profile.household_id),
        "site_id": profile.site_id,
        "household_size": profile.household_size,
        "needs": sorted({need.type.value for need in profile.needs}),
        "vulnerabilities": sorted(flagged & kept_vulnerabilities),
        "status": profile.status.value,
        "version": profile.version,
        "updated_at": event.at.isoformat(),
    }


async def apply_profiles(
    *, session: AsyncSession, events: Sequence[ProfileEvent], policies: PolicyBook
) -> None:
    """Apply profile events in order, as if one by one: one statement per run of events
    in which no household repeats (a statement can change a row only once). Only what the
    entitlement ``policies`` use is kept (:func:`profile_row`)."""
    kept = policies.vulnerabilities_named()
    for events_run in distinct_runs(events, key=lambda event: event.profile.household_id):
        rows = [profile_row(event, kept_vulnerabilities=kept) for event in events_run]
        await run(session, queries.UPSERT_PROFILES, {"rows": json.dumps(rows, ensure_ascii=False)})


async def apply_profile(
    *, session: AsyncSession, profile: HouseholdProfile, at: datetime, policies: PolicyBook
) -> None:
    """Upsert the household from a full profile, unless the model already has a newer one."""
    await apply_profiles(session=session, events=[ProfileEvent(profile, at)], policies=policies)


async def deactivate(*, session: AsyncSession, event: HouseholdDeactivated, at: datetime) -> None:
    """Mark the household deactivated (a stub row when its profile has not arrived)."""
    if await is_erased(session, event.household_id):
        return
    statement = insert(HouseholdView).values(
        household_id=event.household_id,
        site_id=event.site_id,
        household_size=None,
        status=HouseholdStatus.DEACTIVATED.value,
        version=event.version,
        updated_at=at,
    )
    excluded = statement.excluded
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["household_id"],
            set_={"status": _KEEP_MERGED, "version": excluded.version, "updated_at": at},
            where=col(HouseholdView.version) < excluded.version,
        )
    )


async def lock_households(session: AsyncSession, *household_ids: UUID) -> dict[UUID, HouseholdView]:
    """Lock the households' rows (those that exist) in id order: the household lock that
    serialises everything a household is given."""
    rows = await session.exec(
        select(HouseholdView)
        .where(col(HouseholdView.household_id).in_(sorted(set(household_ids))))
        .order_by(col(HouseholdView.household_id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.household_id: row for row in rows}


async def merge_histories(*, session: AsyncSession, event: HouseholdsMerged, at: datetime) -> None:
    """Fold ``merged_id`` into ``surviving_id``: its distributions (hence its entitlement use),
    shelter allocations and prescription references move to the survivor, so the pair cannot
    claim twice."""
    survivor, merged = event.surviving_id, event.merged_id
    await lock_households(session, survivor, merged)
    statement = insert(HouseholdView).values(
        household_id=merged,
        site_id=event.site_id,
        household_size=None,
        status=MERGED,
        version=0,
        merged_into=survivor,
        updated_at=at,
    )
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["household_id"],
            set_={"status": MERGED, "merged_into": survivor, "updated_at": at},
        )
    )
    await session.exec(
        sa.update(Distribution)
        .where(col(Distribution.household_id) == merged)
        .values(household_id=survivor)
    )
    await session.exec(
        sa.update(ShelterAllocation)
        .where(col(ShelterAllocation.household_id) == merged)
        .values(household_id=survivor)
    )
    await session.exec(
        sa.update(Prescription)
        .where(col(Prescription.household_id) == merged)
        .values(household_id=survivor)
    )


async def strip_household(*, session: AsyncSession, household_id: UUID, at: datetime) -> None:
    """Remove the household from this service: its read-model row goes, and its distributions
    and allocations stay only as anonymous quantities (no household id, no references), and its
    prescription references are deleted."""
    await lock_households(session, household_id)
    await session.exec(
        sa.delete(HouseholdView).where(col(HouseholdView.household_id) == household_id)
    )
    await session.exec(
        sa.update(HouseholdView)
        .where(col(HouseholdView.merged_into) == household_id)
        .values(merged_into=None)
    )
    await session.exec(
        insert(ErasedHousehold)
        .values(household_id=household_id, erased_at=at)
        .on_conflict_do_nothing()
    )
    await session.exec(
        sa.delete(Prescription).where(col(Prescription.household_id) == household_id)
    )
    erased_distributions = select(col(Distribution.id)).where(
        col(Distribution.household_id) == household_id
    )
    await session.exec(
        sa.update(DistributionLine)
        .where(col(DistributionLine.distribution_id).in_(erased_distributions))
        .values(prescription_reference=None)
    )
    await session.exec(
        sa.update(Distribution)
        .where(col(Distribution.household_id) == household_id)
        .values(household_id=None, request_fingerprint=None, response=None)
    )


# --- commands' view of a household ---------------------------------------------------------


async def household_for_command(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID,
    retry_after_seconds: int,
    lock: bool,
) -> HouseholdView:
    """The household, locked when ``lock``; HouseholdNotKnownYet when this service has not
    heard of it (or it belongs to a site the caller cannot see: the same answer, on purpose)."""
    if lock:
        household = (await lock_households(session, household_id)).get(household_id)
    else:
        household = await session.get(HouseholdView, household_id)
    return visible_household(
        household,
        principal=principal,
        household_id=household_id,
        retry_after_seconds=retry_after_seconds,
    )


class HouseholdState(Protocol):
    """What the commands read of a household: the read-model row, or a lighter copy of it."""

    @property
    def household_id(self) -> UUID: ...
    @property
    def site_id(self) -> str: ...
    @property
    def household_size(self) -> int | None: ...
    @property
    def needs(self) -> Sequence[str]: ...
    @property
    def vulnerabilities(self) -> Sequence[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def merged_into(self) -> UUID | None: ...


H = TypeVar("H", bound=HouseholdState)


def visible_household(
    household: H | None, *, principal: Principal, household_id: UUID, retry_after_seconds: int
) -> H:
    """``household`` if the caller may act on it; HouseholdNotKnownYet when this service has
    not heard of it, HouseholdOutOfScope (the same answer, audited as refused) when it
    belongs to a site the caller cannot see."""
    if household is None:
        raise HouseholdNotKnownYet(household_id, retry_after_seconds=retry_after_seconds)
    if not principal.can_access_site(household.site_id):
        raise HouseholdOutOfScope(household_id, retry_after_seconds=retry_after_seconds)
    return household


def require_active(household: HouseholdState) -> None:
    if household.status == HouseholdStatus.ACTIVE and household.household_size is not None:
        return
    if household.status == MERGED:
        raise HouseholdNotActive(
            f"Household {household.household_id} was merged into {household.merged_into}: "
            "serve the surviving household.",
            household_status=household.status,
            surviving_household_id=str(household.merged_into) if household.merged_into else None,
        )
    raise HouseholdNotActive(
        f"Household {household.household_id} is {household.status.replace('_', ' ')}: it cannot "
        "be served.",
        household_status=household.status,
    )

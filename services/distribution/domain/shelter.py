"""Shelter beds: capacity, allocations and check-outs, occupancy and space per person.

Over capacity is refused with 409 ``shelter-full`` (no waitlist): the desk sees at once how
many beds are free and can place the household elsewhere. ``shelter.beds_occupied`` is kept
in the allocation's transaction under the shelter's row lock, and ``CHECK (beds_occupied
BETWEEN 0 AND capacity_beds)`` is the last line of defence.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE
from services.distribution.domain.entitlements import policy_in_force
from services.distribution.domain.errors import (
    AllocationNotFound,
    AlreadyExists,
    AlreadyReleased,
    EntitlementExceeded,
    HouseholdAlreadySheltered,
    ShelterFull,
    ShelterNotFound,
    ShelterOutOfScope,
)
from services.distribution.domain.households import (
    household_for_command,
    lock_households,
    require_active,
)
from services.distribution.domain.paging import after, page_of, site_scope
from services.distribution.domain.policy import EntitlementPolicy, PolicyBook
from services.distribution.models import (
    AllocationCreate,
    AllocationPublic,
    AllocationResult,
    HouseholdView,
    Page,
    ReleaseReason,
    Shelter,
    ShelterAllocation,
    ShelterCreate,
    ShelterPublic,
)
from shared import audit
from shared.auth import Principal
from shared.events.distribution import ShelterAllocated, ShelterReleased
from shared.outbox import add_event

EVENT_SOURCE = "haven/distribution"
SYSTEM_ACTOR = "haven/distribution"
SPACE_WARNING = "space-per-person-below-minimum"
TWO_PLACES = Decimal("0.01")


def shelter_public(shelter: Shelter, *, min_space_m2: float) -> ShelterPublic:
    area = Decimal(shelter.floor_area_m2)
    space = (
        (area / shelter.persons).quantize(TWO_PLACES, ROUND_HALF_UP) if shelter.persons else None
    )
    return ShelterPublic(
        id=shelter.id,
        name=shelter.name,
        site_id=shelter.site_id,
        capacity_beds=shelter.capacity_beds,
        floor_area_m2=area,
        beds_occupied=shelter.beds_occupied,
        beds_free=shelter.capacity_beds - shelter.beds_occupied,
        persons=shelter.persons,
        space_per_person_m2=space,
        below_minimum_space=space is not None and space < Decimal(str(min_space_m2)),
    )


def allocation_public(allocation: ShelterAllocation) -> AllocationPublic:
    return AllocationPublic.model_validate(allocation, from_attributes=True)


async def create_shelter(
    *,
    session: AsyncSession,
    principal: Principal,
    data: ShelterCreate,
    now: datetime,
    min_space_m2: float,
) -> ShelterPublic:
    shelter_id = data.id or uuid.uuid4()
    inserted = await session.exec(
        insert(Shelter)
        .values(
            id=shelter_id,
            name=data.name,
            site_id=data.site_id,
            capacity_beds=data.capacity_beds,
            floor_area_m2=data.floor_area_m2,
            beds_occupied=0,
            persons=0,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(col(Shelter.id))
    )
    if inserted.first() is None:
        raise AlreadyExists(
            f"A shelter with this id, or named {data.name!r} at site {data.site_id}, "
            "already exists.",
            site_id=data.site_id,
        )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="shelter.create",
        resource_type="shelter",
        resource_id=str(shelter_id),
    )
    shelter = await session.get(Shelter, shelter_id)
    assert shelter is not None
    return shelter_public(shelter, min_space_m2=min_space_m2)


async def list_shelters(
    *,
    session: AsyncSession,
    principal: Principal,
    min_space_m2: float,
    cursor: str | None,
    limit: int,
) -> Page[ShelterPublic]:
    """The shelters of the caller's sites by site and name, a page at a time."""
    order = [col(Shelter.site_id), col(Shelter.name), col(Shelter.id)]
    query = select(Shelter)
    sites = site_scope(principal)
    if sites is not None:
        query = query.where(col(Shelter.site_id).in_(sites))
    condition = after(order, cursor, types=(str, str, UUID))
    if condition is not None:
        query = query.where(condition)
    rows = (await session.exec(query.order_by(*order).limit(limit + 1))).all()
    shelters, next_cursor = page_of(rows, limit, lambda s: [s.site_id, s.name, s.id])
    return Page[ShelterPublic](
        items=[shelter_public(s, min_space_m2=min_space_m2) for s in shelters],
        next_cursor=next_cursor,
    )


async def get_shelter(
    *, session: AsyncSession, principal: Principal, shelter_id: UUID, lock: bool = False
) -> Shelter:
    """The shelter if the caller may see its site (locked when ``lock``); 404 otherwise."""
    query = select(Shelter).where(col(Shelter.id) == shelter_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    shelter = (await session.exec(query)).one_or_none()
    if shelter is None:
        raise ShelterNotFound(shelter_id)
    if not principal.can_access_site(shelter.site_id):
        raise ShelterOutOfScope(shelter_id)
    return shelter


async def allocate(
    *,
    session: AsyncSession,
    principal: Principal,
    shelter_id: UUID,
    data: AllocationCreate,
    policies: PolicyBook,
    now: datetime,
    today: date,
    retry_after_seconds: int,
    min_space_m2: float,
) -> AllocationResult:
    """Give a household beds in a shelter: within its entitlement and the free beds."""
    await get_shelter(session=session, principal=principal, shelter_id=shelter_id)
    household = await household_for_command(
        session=session,
        principal=principal,
        household_id=data.household_id,
        retry_after_seconds=retry_after_seconds,
        lock=True,
    )
    require_active(household)
    await _refuse_second_allocation(session, household.household_id)
    _check_beds_entitlement(policy_in_force(policies, today), household, data.beds)
    size = household.household_size or 0
    shelter = await get_shelter(
        session=session, principal=principal, shelter_id=shelter_id, lock=True
    )
    free = shelter.capacity_beds - shelter.beds_occupied
    if data.beds > free:
        raise ShelterFull(
            f"{shelter.name} has {free} free beds; {data.beds} requested.",
            beds_free=free,
            beds_requested=data.beds,
        )
    allocation = ShelterAllocation(
        id=uuid.uuid4(),
        shelter_id=shelter.id,
        household_id=household.household_id,
        beds=data.beds,
        persons=size,
        check_in=data.check_in,
        expected_check_out=data.expected_check_out,
        allocated_by=principal.sub,
        allocated_at=now,
    )
    session.add(allocation)
    shelter.beds_occupied += data.beds
    shelter.persons += size
    await session.flush()
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="shelter.allocate",
        resource_type="shelter_allocation",
        resource_id=str(allocation.id),
    )
    await add_event(
        session,
        ShelterAllocated(
            allocation_id=allocation.id,
            household_id=household.household_id,
            shelter_id=shelter.id,
            site_id=shelter.site_id,
            beds=data.beds,
            check_in=data.check_in,
            expected_check_out=data.expected_check_out,
        ),
        key=str(household.household_id),
        source=EVENT_SOURCE,
        actor=principal.sub,
    )
    public = shelter_public(shelter, min_space_m2=min_space_m2)
    return AllocationResult(
        allocation=allocation_public(allocation),
        shelter=public,
        warnings=[SPACE_WARNING] if public.below_minimum_space else [],
    )


async def _refuse_second_allocation(session: AsyncSession, household_id: UUID) -> None:
    """HouseholdAlreadySheltered when the household holds beds somewhere already."""
    current = await session.scalar(
        select(col(ShelterAllocation.id)).where(
            col(ShelterAllocation.household_id) == household_id,
            col(ShelterAllocation.released_at).is_(None),
        )
    )
    if current is not None:
        raise HouseholdAlreadySheltered(
            "The household already has beds; check it out first to move it.",
            allocation_id=str(current),
        )


def _check_beds_entitlement(policy: EntitlementPolicy, household: HouseholdView, beds: int) -> None:
    """EntitlementExceeded when the policy allows the household fewer beds."""
    allowed = policy.shelter.beds_allowed(household.household_size or 0, household.needs)
    if beds > allowed:
        raise EntitlementExceeded(
            f"{beds} beds requested, {allowed} allowed for this household.",
            policy_version=policy.version,
            lines=[
                {
                    "category": "shelter",
                    "requested": beds,
                    "allowed": allowed,
                    "reason": "need_not_assessed" if allowed == 0 else "over_entitlement",
                }
            ],
        )


async def _release(
    session: AsyncSession,
    allocation: ShelterAllocation,
    *,
    at: datetime,
    by: str,
    reason: ReleaseReason,
) -> Shelter:
    shelter = (
        await session.exec(
            select(Shelter)
            .where(col(Shelter.id) == allocation.shelter_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    shelter.beds_occupied -= allocation.beds
    shelter.persons -= allocation.persons
    allocation.released_at = at
    allocation.released_by = by
    allocation.release_reason = reason
    await session.flush()
    if allocation.household_id is not None:
        await add_event(
            session,
            ShelterReleased(
                allocation_id=allocation.id,
                household_id=allocation.household_id,
                shelter_id=shelter.id,
                site_id=shelter.site_id,
                beds=allocation.beds,
                reason_code=reason,
            ),
            key=str(allocation.household_id),
            source=EVENT_SOURCE,
            actor=by,
        )
    return shelter


async def check_out(
    *,
    session: AsyncSession,
    principal: Principal,
    shelter_id: UUID,
    allocation_id: UUID,
    reason: ReleaseReason,
    now: datetime,
    min_space_m2: float,
) -> AllocationResult:
    """Free the allocation's beds (ShelterReleased)."""
    await get_shelter(session=session, principal=principal, shelter_id=shelter_id)
    allocation = await session.get(ShelterAllocation, allocation_id)
    if allocation is None or allocation.shelter_id != shelter_id:
        raise AllocationNotFound(allocation_id)
    if allocation.household_id is not None:
        await lock_households(session, allocation.household_id)
    allocation = (
        await session.exec(
            select(ShelterAllocation)
            .where(col(ShelterAllocation.id) == allocation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    if allocation.released_at is not None:
        raise AlreadyReleased(
            "These beds were already freed.", released_at=allocation.released_at.isoformat()
        )
    shelter = await _release(session, allocation, at=now, by=principal.sub, reason=reason)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="shelter.release",
        resource_type="shelter_allocation",
        resource_id=str(allocation.id),
        reason=reason,
    )
    return AllocationResult(
        allocation=allocation_public(allocation),
        shelter=shelter_public(shelter, min_space_m2=min_space_m2),
        warnings=[],
    )


async def release_all_for_household(
    *, session: AsyncSession, household_id: UUID, at: datetime
) -> None:
    """Free every bed the household holds (its erasure); the caller holds its lock."""
    allocations = (
        await session.exec(
            select(ShelterAllocation)
            .where(
                col(ShelterAllocation.household_id) == household_id,
                col(ShelterAllocation.released_at).is_(None),
            )
            .order_by(col(ShelterAllocation.id))
            .with_for_update()
        )
    ).all()
    for allocation in allocations:
        await _release(
            session, allocation, at=at, by=SYSTEM_ACTOR, reason=ReleaseReason.HOUSEHOLD_ERASED
        )


async def list_allocations(
    *,
    session: AsyncSession,
    principal: Principal,
    shelter_id: UUID,
    active_only: bool,
    cursor: str | None,
    limit: int,
) -> Page[AllocationPublic]:
    """A shelter's allocations, oldest first, a page at a time (household ids: an audited
    read)."""
    await get_shelter(session=session, principal=principal, shelter_id=shelter_id)
    order = [col(ShelterAllocation.allocated_at), col(ShelterAllocation.id)]
    query = select(ShelterAllocation).where(col(ShelterAllocation.shelter_id) == shelter_id)
    if active_only:
        query = query.where(col(ShelterAllocation.released_at).is_(None))
    condition = after(order, cursor, types=(datetime, UUID))
    if condition is not None:
        query = query.where(condition)
    rows = (await session.exec(query.order_by(*order).limit(limit + 1))).all()
    allocations, next_cursor = page_of(rows, limit, lambda a: [a.allocated_at, a.id])
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="shelter_allocations.read",
        resource_type="shelter",
        resource_id=str(shelter_id),
    )
    return Page[AllocationPublic](
        items=[allocation_public(a) for a in allocations], next_cursor=next_cursor
    )

"""The prescription register: the referral or prescription references a clinic recorded for a
household. Medication is given only against one of the household's own references
(``entitlements.check_lines``); this service never asks the referral service (README, Rules)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE
from services.distribution.domain.errors import PrescriptionReferenceTaken
from services.distribution.domain.households import household_for_command, require_active
from services.distribution.models import Prescription, PrescriptionCreate, PrescriptionPublic
from shared import audit
from shared.auth import Principal


async def record_prescription(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID,
    data: PrescriptionCreate,
    now: datetime,
    retry_after_seconds: int,
) -> PrescriptionPublic:
    """Record ``data.reference`` for the household (an active one the caller may see). The
    same reference again for the same household answers the stored record; for another
    household it is refused (PrescriptionReferenceTaken): a reference belongs to one household."""
    household = await household_for_command(
        session=session,
        principal=principal,
        household_id=household_id,
        retry_after_seconds=retry_after_seconds,
        lock=True,
    )
    require_active(household)
    await session.exec(
        insert(Prescription)
        .values(
            reference=data.reference,
            household_id=household.household_id,
            site_id=household.site_id,
            recorded_by=principal.sub,
            recorded_at=now,
        )
        .on_conflict_do_nothing(index_elements=["reference"])
    )
    stored = (
        await session.exec(
            select(Prescription)
            .where(col(Prescription.reference) == data.reference)
            .execution_options(populate_existing=True)
        )
    ).one()
    if stored.household_id != household.household_id:
        raise PrescriptionReferenceTaken(
            "This prescription reference is already recorded for another household."
        )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="prescription.record",
        resource_type="household",
        resource_id=str(household.household_id),
    )
    return PrescriptionPublic(
        reference=stored.reference,
        household_id=stored.household_id,
        recorded_at=stored.recorded_at,
    )

"""Two households merged in registration: everything moves to the survivor, duplicates go."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import consent, referrals
from services.referral.domain.common import Actor, record_audit
from services.referral.domain.states import OPEN_STATUSES, Action, Status
from services.referral.domain.vocabulary import CancelReason, ConsentTaskStatus
from services.referral.models import ConsentTask, HouseholdView, Referral
from shared.events.registration import (
    HouseholdsMerged,
)

# How far a referral has come: on a merge, the further one survives.
_PROGRESS = {
    Status.IN_PROGRESS: 5,
    Status.ACCEPTED: 4,
    Status.SENT: 3,
    Status.DECLINED: 2,
    Status.UNASSIGNED: 1,
    Status.CREATED: 0,
}


async def merge(
    *, session: AsyncSession, event: HouseholdsMerged, actor: Actor, at: datetime
) -> None:
    survivor_id, merged_id = event.surviving_id, event.merged_id
    if survivor_id == merged_id:
        return
    # Lock both households in a stable order, so two merges cannot deadlock.
    for household_id in sorted((survivor_id, merged_id)):
        await referrals.lock_household(session, household_id)
    survivor = await session.get(HouseholdView, survivor_id)
    merged = await session.get(HouseholdView, merged_id)

    await _merge_referrals(session, survivor_id, merged_id, actor=actor, now=at)
    await _merge_consent_tasks(session, survivor_id, merged_id, actor=actor, now=at)

    site_id = survivor.site_id if survivor else (merged.site_id if merged else event.site_id)
    moved = await session.exec(
        sa.update(Referral)
        .where(col(Referral.household_id) == merged_id)
        .values(household_id=survivor_id, site_id=site_id)
        .returning(col(Referral.id))
    )
    moved_ids = [row[0] for row in moved.all()]
    await session.exec(
        sa.update(ConsentTask)
        .where(col(ConsentTask.household_id) == merged_id)
        .values(household_id=survivor_id, site_id=site_id)
    )
    if merged is not None:
        if survivor is None:
            # Keep what is known until the survivor's own profile arrives (any version wins).
            await session.exec(
                sa.update(HouseholdView)
                .where(col(HouseholdView.household_id) == merged_id)
                .values(household_id=survivor_id, version=0)
            )
        else:
            await session.delete(merged)
    await session.flush()
    for referral_id in moved_ids:
        await record_audit(
            session,
            actor,
            action="referral.rekey",
            resource_type="referral",
            resource_id=referral_id,
            reason="households_merged",
        )


async def _merge_referrals(
    session: AsyncSession, survivor_id: UUID, merged_id: UUID, *, actor: Actor, now: datetime
) -> None:
    """Where both have an open referral of one service type, cancel the less advanced one."""
    open_ones = list(
        (
            await session.exec(
                select(Referral)
                .where(col(Referral.household_id).in_([survivor_id, merged_id]))
                .where(col(Referral.status).in_([str(s) for s in OPEN_STATUSES]))
                .order_by(col(Referral.id))
                .with_for_update()
            )
        ).all()
    )
    by_type: dict[str, list[Referral]] = {}
    for referral in open_ones:
        by_type.setdefault(referral.service_type, []).append(referral)
    for group in by_type.values():
        if len(group) < 2:
            continue
        keep = max(
            group,
            key=lambda r: (_PROGRESS[Status(r.status)], r.household_id == survivor_id, r.id),
        )
        for referral in group:
            if referral is not keep:
                await referrals.close(
                    session,
                    referral,
                    Action.CANCEL,
                    reason_code=CancelReason.MERGED_DUPLICATE,
                    actor=actor,
                    now=now,
                )


async def _merge_consent_tasks(
    session: AsyncSession, survivor_id: UUID, merged_id: UUID, *, actor: Actor, now: datetime
) -> None:
    survivor_open = {
        task.service_type
        for task in (
            await session.exec(
                select(ConsentTask)
                .where(ConsentTask.household_id == survivor_id)
                .where(ConsentTask.status == ConsentTaskStatus.OPEN)
            )
        ).all()
    }
    if survivor_open:
        await consent.close_tasks(
            session=session,
            household_id=merged_id,
            status=ConsentTaskStatus.CLOSED,
            reason="households_merged",
            actor=actor,
            now=now,
            service_types=survivor_open,
        )

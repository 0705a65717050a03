"""Registration's household events and what they do here.

* A profile event (registered, updated, needs assessed, vulnerabilities flagged) newer than
  the version held replaces the read model, then creates the automatic referrals its *new*
  needs call for — or, without referral-sharing consent, consent follow-up tasks. Withdrawing
  consent cancels the open referrals that relied on it.
* Deactivation cancels open referrals, closes consent tasks and removes the profile and the
  free text written about the household, keeping only its id, site, status and version.
* Erasure cancels open referrals (so providers and notifications hear of it), then deletes
  everything held about the household: referrals, their history, tasks and the read model.
* A merge moves everything of the merged household to the survivor; where both had an open
  referral of one service type, the further advanced one stays and the other is cancelled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import consent, referrals
from services.referral.domain.common import Actor, record_audit
from services.referral.domain.rules import (
    AskConsent,
    Refer,
    automatic_actions,
    required_services,
)
from services.referral.domain.states import OPEN_STATUSES, Action, Status
from services.referral.domain.vocabulary import CancelReason, ConsentTaskStatus, Origin
from services.referral.models import ConsentTask, HouseholdView, Referral, ReferralHistory
from services.referral.settings import ReferralSettings
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdProfile,
    HouseholdsMerged,
)
from shared.vocabulary import HouseholdStatus

ACTS_ON = frozenset({HouseholdStatus.ACTIVE, HouseholdStatus.PENDING_REVIEW})
"""Household statuses for which automatic referrals are made."""

# How far a referral has come: on a merge, the further one survives.
_PROGRESS = {
    Status.IN_PROGRESS: 5,
    Status.ACCEPTED: 4,
    Status.SENT: 3,
    Status.DECLINED: 2,
    Status.UNASSIGNED: 1,
    Status.CREATED: 0,
}


def _view_columns(profile: HouseholdProfile, now: datetime) -> dict[str, Any]:
    return {
        "household_id": profile.household_id,
        "site_id": profile.site_id,
        "status": profile.status.value,
        "version": profile.version,
        "referral_sharing": profile.consent.referral_sharing,
        "admin1": profile.location.admin1,
        "admin2": profile.location.admin2,
        "preferred_language": profile.preferred_language,
        "household_size": profile.household_size,
        "profile": profile.model_dump(mode="json"),
        "updated_at": now,
    }


_VIEW_COLUMNS = (
    "household_id",
    "site_id",
    "status",
    "version",
    "referral_sharing",
    "admin1",
    "admin2",
    "preferred_language",
    "household_size",
    "profile",
    "updated_at",
)


def _take_profile() -> sa.Select[Any]:
    """One statement for a profile event: lock the household's row and read what it held,
    then insert or replace it unless it already holds this version or a newer one.

    Returns one row: ``taken`` (1 when the row was written), and the previous ``version``,
    ``referral_sharing`` and ``profile`` (NULL when the household was not known here). Every
    part reads the snapshot from before the statement, so the previous values are the old
    ones. A row that appeared after that snapshot (a concurrent first insert) is left alone:
    ``taken`` is 0 with no previous version, and the caller fails the event so it is retried.
    Built once: events only bind values.
    """
    table = HouseholdView.__table__  # type: ignore[attr-defined]
    values = {name: sa.bindparam(name, type_=table.c[name].type) for name in _VIEW_COLUMNS}
    previous = (
        sa.select(table.c.version, table.c.referral_sharing, table.c.profile)
        .where(table.c.household_id == values["household_id"])
        .with_for_update()
        .cte("previous")
    )
    upsert = insert(table).values(values)
    excluded = upsert.excluded
    taken = (
        upsert.on_conflict_do_update(
            index_elements=["household_id"],
            set_={name: excluded[name] for name in _VIEW_COLUMNS[1:]},
            where=sa.and_(table.c.version < excluded.version, sa.exists(sa.select(previous))),
        )
        .returning(table.c.household_id)
        .cte("taken")
    )
    count_taken = sa.select(sa.func.count()).select_from(taken).scalar_subquery()
    one = sa.select(sa.literal_column("1").label("one")).subquery("one")
    return sa.select(
        count_taken.label("taken"),
        previous.c.version,
        previous.c.referral_sharing,
        previous.c.profile,
    ).select_from(one.outerjoin(previous, sa.true()))


_TAKE_PROFILE = _take_profile()


class ConcurrentFirstProfile(RuntimeError):
    """Another transaction inserted the household meanwhile; the event is retried."""


async def apply_profile(
    *,
    session: AsyncSession,
    profile: HouseholdProfile,
    actor: Actor,
    now: datetime,
    settings: ReferralSettings,
) -> bool:
    """Take a newer profile into the read model and act on it; False for a stale version."""
    columns = _view_columns(profile, now)
    taken, previous_version, had_consent, previous_profile = (
        await session.exec(_TAKE_PROFILE, params=columns)  # type: ignore[call-overload]
    ).one()
    first_seen = previous_version is None
    if not taken:
        if first_seen:
            raise ConcurrentFirstProfile(f"household {profile.household_id} inserted meanwhile")
        return False

    if had_consent and not profile.consent.referral_sharing:
        await referrals.close_open_for_household(
            session=session,
            household_id=profile.household_id,
            reason=CancelReason.CONSENT_WITHDRAWN,
            actor=actor,
            now=now,
            keep_consent_overrides=True,
        )
    if profile.status not in ACTS_ON:
        return True
    if not required_services(profile):
        return True  # most households: nothing to refer, no previous profile to read
    previous = HouseholdProfile.model_validate(previous_profile) if previous_profile else None
    actions = automatic_actions(previous, profile)
    # A household first seen here has nothing open: referrals and consent tasks are only
    # made for, or moved by a merge to, a household this table holds (the partial unique
    # indexes would refuse a second open one anyway).
    view = HouseholdView(**columns)
    for action in actions:
        if isinstance(action, Refer):
            if not first_seen and await referrals.open_referral(
                session, household_id=profile.household_id, service_type=action.service_type
            ):
                continue
            referral = await referrals.create(
                session=session,
                household=view,
                service_type=action.service_type,
                urgency=action.urgency,
                origin=Origin.AUTOMATIC,
                actor=actor,
                now=now,
                settings=settings,
                no_open_consent_task=first_seen,
            )
            await record_audit(
                session,
                actor,
                action="referral.create",
                resource_type="referral",
                resource_id=referral.id,
                reason="automatic",
            )
        elif isinstance(action, AskConsent):
            await consent.request_consent(
                session=session,
                household_id=profile.household_id,
                site_id=profile.site_id,
                service_type=action.service_type,
                actor=actor,
                now=now,
                none_open=first_seen,
            )
    return True


async def deactivate(
    *, session: AsyncSession, event: HouseholdDeactivated, actor: Actor, now: datetime
) -> None:
    view = await referrals.lock_household(session, event.household_id)
    if view is not None and view.version > event.version:
        return  # a later reactivation already arrived
    await referrals.close_open_for_household(
        session=session,
        household_id=event.household_id,
        reason=CancelReason.HOUSEHOLD_DEACTIVATED,
        actor=actor,
        now=now,
    )
    await consent.close_tasks(
        session=session,
        household_id=event.household_id,
        status=ConsentTaskStatus.CLOSED,
        reason="household_deactivated",
        actor=actor,
        now=now,
    )
    # What caseworkers wrote about the household goes; the referrals' skeletons stay.
    await session.exec(
        sa.update(Referral)
        .where(col(Referral.household_id) == event.household_id)
        .values(reason=None, override_reason=None)
    )
    await _scrub_history_notes(session, event.household_id)
    if view is None:
        view = HouseholdView(
            household_id=event.household_id,
            site_id=event.site_id,
            status=HouseholdStatus.DEACTIVATED,
            version=event.version,
            updated_at=now,
        )
    view.site_id = event.site_id
    view.status = HouseholdStatus.DEACTIVATED
    view.version = max(view.version, event.version)
    view.referral_sharing = False
    view.admin1 = view.admin2 = view.preferred_language = None
    view.household_size = None
    view.profile = None
    view.updated_at = now
    session.add(view)
    await session.flush()
    await record_audit(
        session,
        actor,
        action="household.deactivate",
        resource_type="household",
        resource_id=event.household_id,
        reason=event.reason_code,
    )


async def _scrub_history_notes(session: AsyncSession, household_id: UUID) -> None:
    of_household = select(Referral.id).where(Referral.household_id == household_id)
    await session.exec(
        sa.update(ReferralHistory)
        .where(col(ReferralHistory.referral_id).in_(of_household))
        .values(note=None)
    )


async def erase(
    *, session: AsyncSession, event: HouseholdErased, actor: Actor, now: datetime
) -> None:
    await referrals.lock_household(session, event.household_id)
    await referrals.close_open_for_household(
        session=session,
        household_id=event.household_id,
        reason=CancelReason.HOUSEHOLD_ERASED,
        actor=actor,
        now=now,
    )
    # History rows go with their referral (ON DELETE CASCADE).
    await session.exec(sa.delete(Referral).where(col(Referral.household_id) == event.household_id))
    await consent.delete_for_household(session, event.household_id)
    await session.exec(
        sa.delete(HouseholdView).where(col(HouseholdView.household_id) == event.household_id)
    )
    await record_audit(
        session,
        actor,
        action="household.erase",
        resource_type="household",
        resource_id=event.household_id,
    )


async def merge(
    *, session: AsyncSession, event: HouseholdsMerged, actor: Actor, now: datetime
) -> None:
    survivor_id, merged_id = event.surviving_id, event.merged_id
    if survivor_id == merged_id:
        return
    # Lock both households in a stable order, so two merges cannot deadlock.
    for household_id in sorted((survivor_id, merged_id)):
        await referrals.lock_household(session, household_id)
    survivor = await session.get(HouseholdView, survivor_id)
    merged = await session.get(HouseholdView, merged_id)

    await _merge_referrals(session, survivor_id, merged_id, actor=actor, now=now)
    await _merge_consent_tasks(session, survivor_id, merged_id, actor=actor, now=now)

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

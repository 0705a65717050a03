"""Deadlines and tiered escalation, with their state in the database.

A referral sent to a provider is due ``deadline(urgency)`` later (per service type, see
settings). Past its deadline, while it is still waiting for acceptance:

* ``ReferralOverdue`` once (per provider it was sent to: ``overdue_at`` records it);
* tier 1 (reminder to the provider), tier 2 (the supervising caseworker) and tier 3 (the
  managers), each once, at the policy's hours after the deadline (``escalation_tier`` is the
  tier reached, ``next_escalation_at`` when the next one is due);
* or, for service types that reroute on deadline, straight to the next provider not tried
  yet (a fresh deadline and fresh tiers), or to the managers' queue when none is left.

:func:`tick` claims due referrals one at a time with ``FOR UPDATE SKIP LOCKED`` and records
the new tier with its events in the same transaction: two replicas never escalate one
referral twice, and a crash before the commit loses nothing (the referral is still due).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import referrals
from services.referral.domain.common import SYSTEM_ACTOR, emit, record_audit
from services.referral.domain.states import Status
from services.referral.domain.vocabulary import Urgency
from services.referral.models import Referral
from services.referral.settings import DeadlinePolicy, ReferralSettings
from shared.db import SessionFactory
from shared.events.referral import EscalationAudience, ReferralEscalated, ReferralOverdue

log = logging.getLogger(__name__)

TIER_AUDIENCES: dict[int, EscalationAudience] = {1: "provider", 2: "caseworker", 3: "manager"}
LAST_TIER = 3


def tier_times(due_at: datetime, policy: DeadlinePolicy, urgency: Urgency) -> list[datetime]:
    """When tiers 1, 2 and 3 are due."""
    return [due_at + offset for offset in policy.escalation_offsets(urgency)]


def tiers_reached(due_at: datetime, policy: DeadlinePolicy, urgency: Urgency, now: datetime) -> int:
    """The highest tier whose time has come (0: none)."""
    return sum(1 for moment in tier_times(due_at, policy, urgency) if moment <= now)


@dataclass
class TickResult:
    """What one tick did (for logs and tests)."""

    overdue: list[UUID] = field(default_factory=list)
    escalations: list[tuple[UUID, int]] = field(default_factory=list)
    rerouted: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len({*self.overdue, *(r for r, _ in self.escalations), *self.rerouted})


async def tick(
    *, sessions: SessionFactory, settings: ReferralSettings, now: datetime
) -> TickResult:
    """Escalate every referral whose next step is due at ``now``; safe in any number of
    replicas at once."""
    result = TickResult()
    skip: set[UUID] = set()
    for _ in range(settings.scheduler_max_per_tick):
        claimed: UUID | None = None
        try:
            async with sessions() as session, session.begin():
                query = (
                    select(Referral)
                    .where(Referral.status == Status.SENT)
                    .where(col(Referral.next_escalation_at).is_not(None))
                    .where(col(Referral.next_escalation_at) <= now)
                    .order_by(col(Referral.next_escalation_at), col(Referral.id))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if skip:
                    query = query.where(col(Referral.id).not_in(list(skip)))
                referral = (await session.exec(query)).first()
                if referral is None:
                    break
                claimed = referral.id
                await _step(session, referral, settings=settings, now=now, result=result)
        except Exception:
            if claimed is None:
                raise
            # This referral stays due; the next tick tries it again. Go on with the others.
            log.warning("escalating a referral failed", exc_info=True)
            skip.add(claimed)
            result.failed.append(claimed)
    return result


async def _step(
    session: AsyncSession,
    referral: Referral,
    *,
    settings: ReferralSettings,
    now: datetime,
    result: TickResult,
) -> None:
    """One claimed referral: overdue once, then rerouted or escalated as its policy says."""
    policy = settings.policy_for(referral.service_type)
    assert referral.due_at is not None  # a sent referral always has one
    if referral.overdue_at is None:
        await _mark_overdue(session, referral, now=now)
        result.overdue.append(referral.id)
    if policy.reroute_on_deadline:
        await _reroute(session, referral, settings=settings, now=now)
        result.rerouted.append(referral.id)
        return
    await _escalate(session, referral, policy=policy, now=now, result=result)


async def _mark_overdue(session: AsyncSession, referral: Referral, *, now: datetime) -> None:
    referral.overdue_at = now
    referral.updated_at = now
    await referrals.save(
        session,
        referral,
        action="overdue",
        from_status=Status(referral.status),
        actor=SYSTEM_ACTOR,
        now=now,
        provider_id=referral.provider_id,
    )
    await emit(
        session,
        ReferralOverdue(**referrals.event_fields(referral)),
        household_id=referral.household_id,
        actor=SYSTEM_ACTOR,
    )


async def _reroute(
    session: AsyncSession, referral: Referral, *, settings: ReferralSettings, now: datetime
) -> None:
    await referrals.reroute(
        session, referral, actor=SYSTEM_ACTOR, now=now, settings=settings, reason="deadline"
    )
    await record_audit(
        session,
        SYSTEM_ACTOR,
        action="referral.reroute",
        resource_type="referral",
        resource_id=referral.id,
        reason="deadline",
    )


async def _escalate(
    session: AsyncSession,
    referral: Referral,
    *,
    policy: DeadlinePolicy,
    now: datetime,
    result: TickResult,
) -> None:
    """Reach every tier whose time has come, each once and in order."""
    assert referral.due_at is not None
    urgency = Urgency(referral.urgency)
    times = tier_times(referral.due_at, policy, urgency)
    reached = tiers_reached(referral.due_at, policy, urgency, now)
    escalated = referral.escalation_tier < reached
    while referral.escalation_tier < reached:
        referral.escalation_tier += 1
        tier = referral.escalation_tier
        referral.next_escalation_at = times[tier] if tier < LAST_TIER else None
        referral.updated_at = now
        await referrals.save(
            session,
            referral,
            action="escalate",
            from_status=Status(referral.status),
            actor=SYSTEM_ACTOR,
            now=now,
            provider_id=referral.provider_id,
            tier=tier,
        )
        await emit(
            session,
            ReferralEscalated(
                **referrals.event_fields(referral),
                tier=tier,
                audience=TIER_AUDIENCES[tier],
                reason_code="deadline",
                caseworker_sub=referral.caseworker_sub,
            ),
            household_id=referral.household_id,
            actor=SYSTEM_ACTOR,
        )
        result.escalations.append((referral.id, tier))
    if referral.escalation_tier < LAST_TIER:
        referral.next_escalation_at = times[referral.escalation_tier]
    else:
        referral.next_escalation_at = None
    session.add(referral)
    await session.flush()
    await record_audit(
        session,
        SYSTEM_ACTOR,
        action="referral.escalate" if escalated else "referral.overdue",
        resource_type="referral",
        resource_id=referral.id,
        reason=f"tier_{referral.escalation_tier}",
    )

"""Deadlines and tiered escalation driven by a controlled clock (nothing sleeps for a
deadline): each tier once, per-service-type policies, rerouting at the deadline, restarts,
two replicas at once, a replica dying mid-escalation."""

from __future__ import annotations

import asyncio
import itertools
import types
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.domain import deadlines, households, referrals
from services.referral.domain.common import SYSTEM_ACTOR
from services.referral.jobs import check_deadlines, deadline_scheduler
from services.referral.settings import ReferralSettings
from shared.auth import Principal, Role
from shared.db import SessionFactory, create_engine, session_factory
from shared.settings import load_settings
from shared.vocabulary import NeedType, Priority
from tests.referral.factories import START, add_provider, profile, referral_events
from tests.support import eventually, migrated_database
from tests.support.clock import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="session")

_areas = itertools.count(1)
POLICIES = (
    '{"legal": {"deadline_hours": 5, "escalation_after_hours": [1, 2, 3]},'
    ' "voluntary_return": {"reroute_on_deadline": true}}'
)


@dataclass
class Scheduler:
    url: str
    engine: AsyncEngine
    sessions: SessionFactory
    settings: ReferralSettings

    async def tick(self, at: datetime, sessions: SessionFactory | None = None) -> Any:
        return await deadlines.tick(
            sessions=sessions or self.sessions, settings=self.settings, now=at
        )

    async def referral(self, household_id: uuid.UUID) -> Any:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    sa.text(
                        "SELECT id, status, provider_id, due_at, overdue_at, escalation_tier,"
                        " next_escalation_at FROM referral WHERE household_id = :h"
                    ),
                    {"h": household_id},
                )
            ).one()

    async def refer(
        self,
        *,
        need: NeedType = NeedType.MEDICAL_CARE,
        priority: Priority = Priority.NORMAL,
        providers: int = 1,
        at: datetime = START,
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        """A household in its own area with ``providers`` providers, referred at ``at``."""
        n = next(_areas) + uuid.uuid4().int % 10**4 * 100
        admin1, admin2 = f"MD{n:06d}", f"MD{n:06d}01"
        service = {
            NeedType.MEDICAL_CARE: "medical",
            NeedType.LEGAL_AID: "legal",
            NeedType.VOLUNTARY_RETURN: "voluntary_return",
        }[need]
        ids = [
            # the first serves the district, so it is chosen first; then the province ones
            await add_provider(
                self.sessions, services=[service], regions=[admin2 if i == 0 else admin1]
            )
            for i in range(providers)
        ]
        event = profile(needs=[(need, priority)], admin1=admin1, admin2=admin2)
        async with self.sessions() as session, session.begin():
            await households.apply_profile(
                session=session, profile=event, actor=SYSTEM_ACTOR, at=at, settings=self.settings
            )
        return event.household_id, ids


@pytest.fixture(scope="module")
async def scheduler(infra) -> AsyncIterator[Scheduler]:
    url = await migrated_database(infra, "referral")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HAVEN_REFERRAL_DATABASE_URL", url)
        patch.setenv("HAVEN_REFERRAL_SERVICE_POLICIES", POLICIES)
        settings = load_settings("referral", ReferralSettings)
    engine = create_engine(url)
    yield Scheduler(url, engine, session_factory(engine), settings)
    await engine.dispose()


def kinds(events: list[Any]) -> list[tuple[str, Any]]:
    """(type, tier or None) of the events after creation and sending."""
    return [(e.type, e.data.get("tier")) for e in events[2:]]


async def test_overdue_once_then_each_tier_once(scheduler: Scheduler) -> None:
    household, (provider,) = await scheduler.refer()
    row = await scheduler.referral(household)
    assert row.due_at == START + timedelta(hours=72)

    await scheduler.tick(START + timedelta(hours=71, minutes=59))
    assert kinds(await referral_events(scheduler.engine, household)) == []

    for _ in range(2):  # a second tick at the same moment does nothing more
        await scheduler.tick(START + timedelta(hours=72))
    events = await referral_events(scheduler.engine, household)
    assert kinds(events) == [("ReferralOverdue", None), ("ReferralEscalated", 1)]
    assert events[-1].data["audience"] == "provider"
    assert events[-1].data["provider_id"] == str(provider)
    assert events[-1].data["reason_code"] == "deadline"

    await scheduler.tick(START + timedelta(hours=95))
    assert len(kinds(await referral_events(scheduler.engine, household))) == 2
    await scheduler.tick(START + timedelta(hours=96))
    await scheduler.tick(START + timedelta(hours=120))
    await scheduler.tick(START + timedelta(hours=1000))
    events = await referral_events(scheduler.engine, household)
    assert kinds(events) == [
        ("ReferralOverdue", None),
        ("ReferralEscalated", 1),
        ("ReferralEscalated", 2),
        ("ReferralEscalated", 3),
    ]
    assert [e.data["audience"] for e in events[3:]] == ["provider", "caseworker", "manager"]
    row = await scheduler.referral(household)
    assert row.escalation_tier == 3
    assert row.next_escalation_at is None
    assert row.overdue_at == START + timedelta(hours=72)
    assert row.status == "sent"  # escalation does not take it from the provider


async def test_urgent_referrals_have_24_hours_and_closer_tiers(scheduler: Scheduler) -> None:
    household, _ = await scheduler.refer(priority=Priority.URGENT)
    assert (await scheduler.referral(household)).due_at == START + timedelta(hours=24)
    await scheduler.tick(START + timedelta(hours=24))
    await scheduler.tick(START + timedelta(hours=28))
    await scheduler.tick(START + timedelta(hours=32))
    assert kinds(await referral_events(scheduler.engine, household)) == [
        ("ReferralOverdue", None),
        ("ReferralEscalated", 1),
        ("ReferralEscalated", 2),
        ("ReferralEscalated", 3),
    ]


async def test_a_late_tick_reaches_every_passed_tier_once_in_order(scheduler: Scheduler) -> None:
    household, _ = await scheduler.refer()
    await scheduler.tick(START + timedelta(days=30))
    await scheduler.tick(START + timedelta(days=31))
    assert kinds(await referral_events(scheduler.engine, household)) == [
        ("ReferralOverdue", None),
        ("ReferralEscalated", 1),
        ("ReferralEscalated", 2),
        ("ReferralEscalated", 3),
    ]


async def test_deadline_configured_per_service_type(scheduler: Scheduler) -> None:
    household, _ = await scheduler.refer(need=NeedType.LEGAL_AID)
    assert (await scheduler.referral(household)).due_at == START + timedelta(hours=5)
    await scheduler.tick(START + timedelta(hours=5))
    assert kinds(await referral_events(scheduler.engine, household)) == [
        ("ReferralOverdue", None)
    ]  # tier 1 of legal comes an hour after the deadline
    await scheduler.tick(START + timedelta(hours=6))
    assert kinds(await referral_events(scheduler.engine, household))[-1] == ("ReferralEscalated", 1)


async def test_accepted_in_time_is_never_escalated_and_acceptance_stops_escalation(
    scheduler: Scheduler,
) -> None:
    on_time, (provider_a,) = await scheduler.refer()
    late, (provider_b,) = await scheduler.refer()

    async def accept(household: uuid.UUID, provider: uuid.UUID) -> None:
        staff = Principal(
            sub="p", roles=frozenset({Role.PROVIDER}), sites=frozenset(), org=str(provider)
        )
        row = await scheduler.referral(household)
        async with scheduler.sessions() as session, session.begin():
            await referrals.accept(session=session, principal=staff, referral_id=row.id, now=START)

    await accept(on_time, provider_a)
    await scheduler.tick(START + timedelta(hours=72))
    await accept(late, provider_b)
    await scheduler.tick(START + timedelta(days=30))
    assert kinds(await referral_events(scheduler.engine, on_time)) == [("ReferralAccepted", None)]
    assert kinds(await referral_events(scheduler.engine, late)) == [
        ("ReferralOverdue", None),
        ("ReferralEscalated", 1),
        ("ReferralAccepted", None),
    ]


async def test_reroute_on_deadline_where_configured_then_the_queue(scheduler: Scheduler) -> None:
    household, (first, second) = await scheduler.refer(need=NeedType.VOLUNTARY_RETURN, providers=2)
    assert (await scheduler.referral(household)).provider_id == first
    await scheduler.tick(START + timedelta(hours=72))
    row = await scheduler.referral(household)
    assert row.provider_id == second
    assert row.status == "sent"
    assert row.due_at == START + timedelta(hours=144)  # a fresh deadline for the new provider
    assert row.escalation_tier == 0 and row.overdue_at is None
    events = await referral_events(scheduler.engine, household)
    assert kinds(events) == [
        ("ReferralOverdue", None),
        ("ReferralRerouted", None),
        ("ReferralSent", None),
    ]
    assert events[3].data["previous_provider_id"] == str(first)
    assert events[3].data["reason_code"] == "deadline"

    await scheduler.tick(START + timedelta(hours=144))
    row = await scheduler.referral(household)
    assert row.status == "unassigned" and row.provider_id is None
    assert kinds(await referral_events(scheduler.engine, household))[3:] == [
        ("ReferralOverdue", None),
        ("ReferralRerouted", None),
        ("ReferralEscalated", 3),
    ]
    async with scheduler.engine.connect() as conn:
        path = (
            await conn.execute(
                sa.text(
                    "SELECT action, provider_id, reason_code FROM referral_history"
                    " WHERE referral_id = :id ORDER BY id"
                ),
                {"id": row.id},
            )
        ).all()
    assert [tuple(p) for p in path] == [
        ("create", None, None),
        ("send", first, None),
        ("overdue", first, None),
        ("reroute", second, "deadline"),
        ("overdue", second, None),
        ("queue", None, "deadline"),
    ]


async def test_a_restart_loses_nothing_and_repeats_nothing(scheduler: Scheduler) -> None:
    household, _ = await scheduler.refer()
    await scheduler.tick(START + timedelta(hours=72))
    await scheduler.engine.dispose()  # the process dies; a new one starts with a new pool
    restarted = create_engine(scheduler.url)
    sessions = session_factory(restarted)
    try:
        await scheduler.tick(START + timedelta(hours=72), sessions)
        await scheduler.tick(START + timedelta(hours=90), sessions)
        assert len(kinds(await referral_events(restarted, household))) == 2
        await scheduler.tick(START + timedelta(hours=96), sessions)
        assert kinds(await referral_events(restarted, household)) == [
            ("ReferralOverdue", None),
            ("ReferralEscalated", 1),
            ("ReferralEscalated", 2),
        ]
    finally:
        await restarted.dispose()


async def test_two_replicas_ticking_at_once_escalate_each_referral_once(
    scheduler: Scheduler,
) -> None:
    mine = [(await scheduler.refer())[0] for _ in range(12)]
    replicas = [create_engine(scheduler.url) for _ in range(2)]
    try:
        at = START + timedelta(hours=96)
        results = await asyncio.gather(
            *(scheduler.tick(at, session_factory(engine)) for engine in replicas)
        )
        for household in mine:
            assert kinds(await referral_events(scheduler.engine, household)) == [
                ("ReferralOverdue", None),
                ("ReferralEscalated", 1),
                ("ReferralEscalated", 2),
            ]
        ids = {(await scheduler.referral(h)).id for h in mine}
        handled = [set(r.overdue) & ids for r in results]
        assert handled[0].isdisjoint(handled[1])
        assert handled[0] | handled[1] == ids
    finally:
        for engine in replicas:
            await engine.dispose()


async def test_a_referral_held_by_a_dying_replica_is_skipped_then_escalated_once(
    scheduler: Scheduler,
) -> None:
    household, _ = await scheduler.refer()
    row = await scheduler.referral(household)
    at = START + timedelta(hours=72)
    async with scheduler.engine.connect() as dying:
        transaction = await dying.begin()
        await dying.execute(
            sa.text("SELECT id FROM referral WHERE id = :id FOR UPDATE"), {"id": row.id}
        )
        result = await asyncio.wait_for(scheduler.tick(at), timeout=20)  # does not wait on it
        assert row.id not in result.overdue
        assert kinds(await referral_events(scheduler.engine, household)) == []
        await transaction.rollback()  # it died before committing anything
    await scheduler.tick(at)
    await scheduler.tick(at)
    assert kinds(await referral_events(scheduler.engine, household)) == [
        ("ReferralOverdue", None),
        ("ReferralEscalated", 1),
    ]


async def test_one_failing_referral_does_not_stop_the_others(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, _ = await scheduler.refer()
    fine, _ = await scheduler.refer()
    broken_id = (await scheduler.referral(broken)).id
    original = deadlines._step

    async def flaky(session: Any, referral: Any, **kwargs: Any) -> None:
        await original(session, referral, **kwargs)
        if referral.id == broken_id:
            raise RuntimeError("crash after the events were staged")

    monkeypatch.setattr(deadlines, "_step", flaky)
    at = START + timedelta(hours=72)
    result = await scheduler.tick(at)
    assert result.failed == [broken_id]
    assert kinds(await referral_events(scheduler.engine, broken)) == []  # rolled back whole
    assert len(kinds(await referral_events(scheduler.engine, fine))) == 2
    monkeypatch.setattr(deadlines, "_step", original)
    await scheduler.tick(at)
    assert kinds(await referral_events(scheduler.engine, broken)) == [
        ("ReferralOverdue", None),
        ("ReferralEscalated", 1),
    ]


async def test_the_background_job_ticks_with_the_injected_clock(scheduler: Scheduler) -> None:
    household, _ = await scheduler.refer()
    clock = FakeClock(START)
    settings = scheduler.settings.model_copy(update={"scheduler_interval_seconds": 0.05})
    stop = asyncio.Event()
    runtime = types.SimpleNamespace(sessions=scheduler.sessions, settings=settings, clock=clock)
    task = asyncio.create_task(deadline_scheduler(runtime, stop))  # type: ignore[arg-type]
    try:
        clock.advance(hours=72)

        async def escalated() -> bool:
            return len(kinds(await referral_events(scheduler.engine, household))) == 2

        await eventually(escalated, timeout=20, interval=0.05, what="the job's first tick")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_a_disabled_scheduler_leaves_due_referrals_alone(scheduler: Scheduler) -> None:
    household, _ = await scheduler.refer()
    settings = scheduler.settings.model_copy(update={"scheduler_enabled": False})
    clock = FakeClock(START + timedelta(days=30))
    runtime = types.SimpleNamespace(sessions=scheduler.sessions, settings=settings, clock=clock)
    await check_deadlines(runtime)  # type: ignore[arg-type]
    assert kinds(await referral_events(scheduler.engine, household)) == []

"""Registration's events through the consumer (``EventConsumer.process``, no broker): the read
model, automatic referrals, consent follow-ups, consent withdrawal, deactivation, erasure and
merges. The same handlers against the real broker are in test_kafka_flow.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.consumer import EventConsumer
from shared.db import SessionFactory, create_engine, session_factory
from shared.events.catalog import HOUSEHOLDS
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdsMerged,
    HouseholdUpdated,
)
from shared.vocabulary import NeedType, Priority, Vulnerability
from tests.referral.factories import (
    START,
    add_provider,
    envelope,
    profile,
    record,
    referral_consumer,
    referral_events,
)
from tests.support import migrated_database
from tests.support.clock import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Consumer:
    events: EventConsumer
    engine: AsyncEngine
    sessions: SessionFactory
    clock: FakeClock

    async def deliver(self, payload: Any) -> str:
        return await self.events.process(HOUSEHOLDS, record(envelope(payload)))

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())

    async def referrals(self, household_id: uuid.UUID) -> list[Any]:
        return await self.rows(
            "SELECT service_type, status, urgency, sensitive, origin, reason, provider_id,"
            " due_at, id FROM referral WHERE household_id = :h ORDER BY id",
            h=household_id,
        )


@pytest.fixture(scope="module")
async def consumer(infra) -> AsyncIterator[Consumer]:
    url = await migrated_database(infra, "referral")
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = FakeClock(START)
    events = referral_consumer(
        infra.kafka_bootstrap, url, sessions, clock, client_id="referral-handler-tests"
    )
    # one provider for everything, everywhere the tests' households live
    await add_provider(
        sessions,
        services=["medical", "legal", "psychosocial", "counter_trafficking", "voluntary_return"],
        regions=["MD01"],
        capacity=1000,
    )
    yield Consumer(events, engine, sessions, clock)
    await events.dead_letters.stop()
    await engine.dispose()


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


async def test_urgent_medical_need_is_referred_and_sent_once(consumer: Consumer) -> None:
    registered = profile(needs=[(NeedType.MEDICAL_CARE, Priority.URGENT)])
    env = envelope(registered)
    assert await consumer.events.process(HOUSEHOLDS, record(env)) == "applied"
    assert await consumer.events.process(HOUSEHOLDS, record(env)) == "duplicate"
    (referral,) = await consumer.referrals(registered.household_id)
    assert referral.service_type == "medical"
    assert referral.status == "sent"
    assert referral.urgency == "urgent"
    assert referral.origin == "automatic"
    assert referral.due_at - consumer.clock() == timedelta(hours=24)
    events = await referral_events(consumer.engine, registered.household_id)
    assert types(events) == ["ReferralCreated", "ReferralSent"]
    assert {e.headers["ce_causationid"] for e in events} == {str(env.id)}
    assert events[0].data["origin"] == "automatic"


@pytest.mark.parametrize(
    ("fields", "service_type", "urgency", "sensitive"),
    [
        ({"needs": [NeedType.LEGAL_AID]}, "legal", "normal", False),
        (
            {"needs": [(NeedType.PSYCHOSOCIAL_SUPPORT, Priority.HIGH)]},
            "psychosocial",
            "high",
            False,
        ),
        ({"needs": [NeedType.VOLUNTARY_RETURN]}, "voluntary_return", "normal", False),
        (
            {"vulnerabilities": [Vulnerability.SURVIVOR_OF_TRAFFICKING]},
            "counter_trafficking",
            "high",
            True,
        ),
        (
            {"vulnerabilities": [Vulnerability.SERIOUS_MEDICAL_CONDITION]},
            "medical",
            "normal",
            False,
        ),
    ],
)
async def test_each_rule_refers_to_its_service_type(
    consumer: Consumer, fields: dict[str, Any], service_type: str, urgency: str, sensitive: bool
) -> None:
    event = profile(**fields)
    assert await consumer.deliver(event) == "applied"
    (referral,) = await consumer.referrals(event.household_id)
    assert (referral.service_type, referral.urgency, referral.sensitive) == (
        service_type,
        urgency,
        sensitive,
    )
    sent = (await referral_events(consumer.engine, event.household_id))[-1]
    assert sent.type == "ReferralSent" and sent.data["sensitive"] is sensitive


async def test_without_consent_a_task_not_a_referral_until_consent_is_given(
    consumer: Consumer,
) -> None:
    household = uuid.uuid4()
    await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID], referral_sharing=False))
    assert await consumer.referrals(household) == []
    tasks = await consumer.rows(
        "SELECT service_type, status FROM consent_task WHERE household_id = :h", h=household
    )
    assert [tuple(t) for t in tasks] == [("legal", "open")]
    (asked,) = await referral_events(consumer.engine, household)
    assert asked.type == "ConsentFollowUpRequested"
    assert asked.data["service_type"] == "legal" and asked.data["site_id"] == "MDA-CHI"

    # an unrelated update without consent asks nothing more
    await consumer.deliver(
        profile(
            household,
            needs=[NeedType.LEGAL_AID],
            referral_sharing=False,
            version=2,
            event=HouseholdUpdated,
        )
    )
    assert len(await referral_events(consumer.engine, household)) == 1

    await consumer.deliver(
        profile(household, needs=[NeedType.LEGAL_AID], version=3, event=HouseholdUpdated)
    )
    (referral,) = await consumer.referrals(household)
    assert referral.status == "sent"
    tasks = await consumer.rows(
        "SELECT status, closed_reason FROM consent_task WHERE household_id = :h", h=household
    )
    assert [tuple(t) for t in tasks] == [("resolved", "referred")]


async def test_older_versions_are_ignored_and_unrelated_updates_do_not_refer_again(
    consumer: Consumer,
) -> None:
    household = uuid.uuid4()
    await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID], version=2))
    late = profile(household, needs=[NeedType.LEGAL_AID, NeedType.VOLUNTARY_RETURN], version=1)
    assert await consumer.deliver(late) == "applied"  # consumed, but changes nothing
    assert [r.service_type for r in await consumer.referrals(household)] == ["legal"]
    version = await consumer.rows(
        "SELECT version FROM referral_household WHERE household_id = :h", h=household
    )
    assert version[0].version == 2

    (legal,) = await consumer.referrals(household)
    async with consumer.engine.begin() as conn:  # as a caseworker's cancel would leave it
        await conn.execute(
            sa.text("UPDATE referral SET status = 'cancelled' WHERE id = :id"), {"id": legal.id}
        )
    await consumer.deliver(
        profile(household, needs=[NeedType.LEGAL_AID], version=3, admin2="MD0102")
    )
    assert [r.status for r in await consumer.referrals(household)] == ["cancelled"]


async def test_withdrawn_consent_cancels_open_referrals_except_overridden_ones(
    consumer: Consumer,
) -> None:
    household = uuid.uuid4()
    await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID, NeedType.MEDICAL_CARE]))
    medical = next(r for r in await consumer.referrals(household) if r.service_type == "medical")
    async with consumer.engine.begin() as conn:  # made with an override, say
        await conn.execute(
            sa.text(
                "UPDATE referral SET consent_override = true, override_reason = 'x' WHERE id = :id"
            ),
            {"id": medical.id},
        )
    await consumer.deliver(
        profile(
            household,
            needs=[NeedType.LEGAL_AID, NeedType.MEDICAL_CARE],
            referral_sharing=False,
            version=2,
        )
    )
    statuses = {r.service_type: r.status for r in await consumer.referrals(household)}
    assert statuses == {"legal": "cancelled", "medical": "sent"}
    cancelled = [
        e
        for e in await referral_events(consumer.engine, household)
        if e.type == "ReferralCancelled"
    ]
    assert [e.data["reason_code"] for e in cancelled] == ["consent_withdrawn"]


async def test_households_routed_at_once_never_exceed_a_providers_capacity(
    consumer: Consumer,
) -> None:
    """Twelve households of one region arrive at once; its only provider has three slots:
    three referrals are sent to it, the other nine wait in the managers' queue."""
    region = f"MD{uuid.uuid4().int % 900 + 100}"
    provider_id = await add_provider(
        consumer.sessions, services=["medical"], regions=[region], capacity=3
    )
    households = [
        profile(needs=[(NeedType.MEDICAL_CARE, Priority.URGENT)], admin1=region, admin2=None)
        for _ in range(12)
    ]
    outcomes = await asyncio.gather(*(consumer.deliver(h) for h in households))
    assert outcomes == ["applied"] * 12
    rows = await consumer.rows(
        "SELECT status, provider_id FROM referral WHERE household_id = ANY(:h)",
        h=[h.household_id for h in households],
    )
    assert sorted(r.status for r in rows) == ["sent"] * 3 + ["unassigned"] * 9
    assert {r.provider_id for r in rows if r.status == "sent"} == {provider_id}


async def test_deactivation_cancels_and_removes_what_was_held(consumer: Consumer) -> None:
    household = uuid.uuid4()
    await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID], version=2))
    async with consumer.engine.begin() as conn:
        await conn.execute(  # a consent task from before consent was given, still open
            sa.text(
                "INSERT INTO consent_task (id, household_id, site_id, service_type, status,"
                " created_at) VALUES (:id, :h, 'MDA-CHI', 'psychosocial', 'open', now())"
            ),
            {"id": uuid.uuid4(), "h": household},
        )
        await conn.execute(
            sa.text("UPDATE referral SET reason = 'free text' WHERE household_id = :h"),
            {"h": household},
        )
        await conn.execute(
            sa.text(
                "UPDATE referral_history SET note = 'note' WHERE referral_id IN"
                " (SELECT id FROM referral WHERE household_id = :h)"
            ),
            {"h": household},
        )
    deactivated = HouseholdDeactivated(
        household_id=household, site_id="MDA-CHI", reason_code="relocated", version=3
    )
    assert await consumer.deliver(deactivated) == "applied"
    (referral,) = await consumer.referrals(household)
    assert referral.status == "cancelled" and referral.reason is None
    notes = await consumer.rows(
        "SELECT count(*) AS n FROM referral_history h JOIN referral r ON r.id = h.referral_id"
        " WHERE r.household_id = :h AND h.note IS NOT NULL",
        h=household,
    )
    assert notes[0].n == 0
    view = await consumer.rows(
        "SELECT status, version, profile, admin1, preferred_language FROM referral_household"
        " WHERE household_id = :h",
        h=household,
    )
    assert tuple(view[0]) == ("deactivated", 3, None, None, None)
    tasks = await consumer.rows(
        "SELECT status FROM consent_task WHERE household_id = :h", h=household
    )
    assert [t.status for t in tasks] == ["closed"]
    cancelled = (await referral_events(consumer.engine, household))[-1]
    assert cancelled.type == "ReferralCancelled"
    assert cancelled.data["reason_code"] == "household_deactivated"
    # a stale profile cannot bring it back
    await consumer.deliver(profile(household, needs=[NeedType.MEDICAL_CARE], version=2))
    assert len(await consumer.referrals(household)) == 1


async def test_erasure_cancels_then_deletes_everything_about_the_household(
    consumer: Consumer,
) -> None:
    household = uuid.uuid4()
    await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID, NeedType.MEDICAL_CARE]))
    await consumer.deliver(
        profile(
            household,
            needs=[NeedType.LEGAL_AID, NeedType.MEDICAL_CARE, NeedType.PSYCHOSOCIAL_SUPPORT],
            referral_sharing=False,
            version=2,
        )
    )
    before = types(await referral_events(consumer.engine, household))
    assert await consumer.deliver(HouseholdErased(household_id=household, site_id="MDA-CHI")) == (
        "applied"
    )
    for table in ("referral", "consent_task", "referral_household"):
        count = await consumer.rows(
            f"SELECT count(*) AS n FROM {table} WHERE household_id = :h", h=household
        )
        assert count[0].n == 0, table
    orphans = await consumer.rows(
        "SELECT count(*) AS n FROM referral_history h LEFT JOIN referral r ON r.id = h.referral_id"
        " WHERE r.id IS NULL"
    )
    assert orphans[0].n == 0
    after = types(await referral_events(consumer.engine, household))
    assert after[len(before) :] == []  # both were already cancelled when consent was withdrawn
    # an erased household with open referrals: providers hear of the cancellation
    other = uuid.uuid4()
    await consumer.deliver(profile(other, needs=[NeedType.LEGAL_AID]))
    await consumer.deliver(HouseholdErased(household_id=other, site_id="MDA-CHI"))
    tail = (await referral_events(consumer.engine, other))[-1]
    assert tail.type == "ReferralCancelled" and tail.data["reason_code"] == "household_erased"
    assert await consumer.referrals(other) == []


async def test_merge_rekeys_to_the_survivor_without_a_second_open_referral(
    consumer: Consumer,
) -> None:
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    await consumer.deliver(profile(survivor, needs=[NeedType.LEGAL_AID]))
    await consumer.deliver(
        profile(
            merged, needs=[NeedType.LEGAL_AID, NeedType.VOLUNTARY_RETURN, NeedType.MEDICAL_CARE]
        )
    )
    await consumer.deliver(
        profile(uuid.uuid4())  # unrelated household, untouched
    )
    # the merged household's legal referral went further: it is the one kept
    merged_legal = next(r for r in await consumer.referrals(merged) if r.service_type == "legal")
    async with consumer.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE referral SET status = 'accepted' WHERE id = :id"),
            {"id": merged_legal.id},
        )
    assert (
        await consumer.deliver(
            HouseholdsMerged(surviving_id=survivor, merged_id=merged, site_id="MDA-CHI")
        )
        == "applied"
    )
    assert await consumer.referrals(merged) == []
    after = await consumer.referrals(survivor)
    open_by_type: dict[str, list[Any]] = {}
    for referral in after:
        if referral.status not in ("cancelled", "completed", "revoked"):
            open_by_type.setdefault(referral.service_type, []).append(referral)
    assert {t: len(v) for t, v in open_by_type.items()} == {
        "legal": 1,
        "voluntary_return": 1,
        "medical": 1,
    }
    assert open_by_type["legal"][0].id == merged_legal.id
    assert len(after) == 4  # the survivor's own legal referral, cancelled as a duplicate
    views = await consumer.rows(
        "SELECT household_id FROM referral_household WHERE household_id IN (:a, :b)",
        a=survivor,
        b=merged,
    )
    assert [v.household_id for v in views] == [survivor]

    # merges of households never seen here are harmless
    assert (
        await consumer.deliver(
            HouseholdsMerged(surviving_id=uuid.uuid4(), merged_id=uuid.uuid4(), site_id="S")
        )
        == "applied"
    )


async def test_merge_moves_the_merged_profile_when_the_survivor_is_unknown(
    consumer: Consumer,
) -> None:
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    await consumer.deliver(profile(merged, needs=[NeedType.LEGAL_AID], version=7))
    await consumer.deliver(HouseholdsMerged(surviving_id=survivor, merged_id=merged, site_id="S"))
    assert [r.service_type for r in await consumer.referrals(survivor)] == ["legal"]
    # the survivor's own first profile is taken, whatever its version
    await consumer.deliver(profile(survivor, needs=[NeedType.LEGAL_AID], version=1))
    view = await consumer.rows(
        "SELECT version FROM referral_household WHERE household_id = :h", h=survivor
    )
    assert view[0].version == 1


async def test_deactivation_of_an_unknown_household_then_reactivation(consumer: Consumer) -> None:
    household = uuid.uuid4()
    deactivated = HouseholdDeactivated(
        household_id=household, site_id="MDA-CHI", reason_code="left", version=4
    )
    assert await consumer.deliver(deactivated) == "applied"
    assert await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID], version=3)) == (
        "applied"
    )
    assert await consumer.referrals(household) == []  # older than the deactivation
    await consumer.deliver(profile(household, needs=[NeedType.LEGAL_AID], version=5))
    assert [r.status for r in await consumer.referrals(household)] == ["sent"]

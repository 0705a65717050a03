"""Registration's profile events taken a batch at a time: one statement per run of distinct
households for the read model, then each event's referrals and consent tasks in order. The
batch leaves what the events applied one by one leave; it costs few statements; a household
inserted meanwhile by another transaction fails the batch, and its event is applied again."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral import handlers
from services.referral.settings import ReferralSettings
from shared.consumer import EventConsumer
from shared.db import create_engine, session_factory
from shared.events.catalog import HOUSEHOLDS
from shared.events.envelope import Envelope
from shared.events.registration import (
    HouseholdErased,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
)
from shared.settings import load_settings
from shared.vocabulary import HouseholdStatus, NeedType, Priority
from tests.referral.factories import (
    START,
    add_provider,
    handler_runtime,
    profile,
    referral_consumer,
)
from tests.support import consumer_record, eventually, migrated_database, sent_statements, unique
from tests.support.clock import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCARCE_REGION = "MD77"  # one provider with two slots serves it


@dataclass
class Consumer:
    events: EventConsumer
    engine: AsyncEngine

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(sa.text(sql), params)).all()]


Make = Callable[[], Awaitable[Consumer]]


@pytest.fixture
async def make_consumer(infra: Any) -> AsyncIterator[Make]:
    """A referral consumer on a fresh database with the same providers each time."""
    made: list[Consumer] = []

    async def make() -> Consumer:
        url = await migrated_database(infra, "referral", unique("refbatch"))
        engine = create_engine(url, pool_size=3)
        sessions = session_factory(engine)
        events = referral_consumer(
            infra.kafka_bootstrap, url, sessions, FakeClock(START), client_id="referral-batch-tests"
        )
        await add_provider(
            sessions,
            name="Everywhere",
            services=["medical", "legal", "psychosocial", "voluntary_return"],
            regions=["MD01"],
            capacity=1000,
        )
        await add_provider(
            sessions, name="Scarce", services=["medical"], regions=[SCARCE_REGION], capacity=2
        )
        made.append(Consumer(events, engine))
        return made[-1]

    yield make
    for consumer in made:
        await consumer.events.dead_letters.stop()
        await consumer.engine.dispose()


def wrap(payload: Any) -> Envelope[Any]:
    return Envelope.wrap(
        payload, source="haven/registration", actor="registrar-1", correlation_id=unique("corr")
    )


def records(envelopes: list[Envelope[Any]]) -> list[Any]:
    return [
        consumer_record(
            e,
            topic=HOUSEHOLDS.name,
            key=str(getattr(e.data, "household_id", None) or e.data.surviving_id),
            offset=i,
        )
        for i, e in enumerate(envelopes)
    ]


async def state(consumer: Consumer) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the events left, without the ids drawn anew in each database."""
    return {
        "households": await consumer.rows(
            "SELECT household_id, site_id, status, version, referral_sharing, admin1, admin2,"
            " preferred_language, household_size, profile, updated_at"
            " FROM referral_household ORDER BY household_id"
        ),
        "referrals": await consumer.rows(
            "SELECT r.household_id, r.service_type, r.status, r.urgency, r.origin, p.name,"
            " r.due_at, r.consent_override, r.created_at, r.updated_at, r.site_id,"
            " r.sensitive, r.reason, r.override_reason, r.caseworker_sub, r.sent_at,"
            " r.overdue_at, r.escalation_tier, r.next_escalation_at, r.closed_at,"
            " (SELECT array_agg(t.name ORDER BY o.n) FROM unnest(r.tried_provider_ids)"
            "   WITH ORDINALITY AS o(id, n) JOIN provider t ON t.id = o.id)"
            " FROM referral r LEFT JOIN provider p ON p.id = r.provider_id"
            " ORDER BY r.household_id, r.service_type, r.status"
        ),
        "history": await consumer.rows(
            "SELECT r.household_id, h.action, h.from_status, h.to_status, h.reason_code,"
            " h.actor, h.at, p.name, h.note, h.tier"
            " FROM referral_history h JOIN referral r ON r.id = h.referral_id"
            " LEFT JOIN provider p ON p.id = h.provider_id ORDER BY h.id"
        ),
        "consent_tasks": await consumer.rows(
            "SELECT household_id, service_type, status, closed_reason, created_at, closed_at"
            " FROM consent_task ORDER BY household_id, service_type, status"
        ),
        # in staging order: the events' type, key, cause and correlation; audit records'
        # action and reason
        "outbox": await consumer.rows(
            "SELECT topic, key,"
            " (SELECT h->>1 FROM jsonb_array_elements(headers) h WHERE h->>0 = 'ce_type'),"
            " (SELECT h->>1 FROM jsonb_array_elements(headers) h"
            "   WHERE h->>0 = 'ce_causationid'),"
            " (SELECT h->>1 FROM jsonb_array_elements(headers) h"
            "   WHERE h->>0 = 'ce_correlationid'),"
            " convert_from(value, 'UTF8')::jsonb->>'action',"
            " convert_from(value, 'UTF8')::jsonb->>'reason',"
            " convert_from(value, 'UTF8')::jsonb->>'correlation_id',"
            " convert_from(value, 'UTF8')::jsonb->>'reason_code'"
            " FROM outbox ORDER BY id"
        ),
    }


def mixed_batch() -> tuple[list[Envelope[Any]], list[Envelope[Any]]]:
    """Events delivered beforehand, then a batch mixing every case the rules have."""
    ids = {name: uuid.uuid4() for name in "abcdefghjkm"}
    # g before h in the batch, h first in id order: acting on them in id order instead
    # would give h the scarce provider's last slot
    ids["g"], ids["h"] = max(ids["g"], ids["h"]), min(ids["g"], ids["h"])
    medical = [(NeedType.MEDICAL_CARE, Priority.URGENT)]
    scarce = {"admin1": SCARCE_REGION, "admin2": None}
    before = [
        profile(ids["c"], needs=[NeedType.LEGAL_AID]),
        profile(ids["e"], version=5),
        profile(ids["m"], needs=[NeedType.LEGAL_AID, NeedType.VOLUNTARY_RETURN]),
        profile(ids["d"], needs=[NeedType.LEGAL_AID]),
    ]
    updated = HouseholdUpdated
    batch = [
        profile(ids["a"], needs=medical, **scarce),  # new: referred, the scarce slot
        profile(ids["b"]),  # new, nothing to refer
        profile(  # consent withdrawn: its open referral cancelled
            ids["c"], needs=[NeedType.LEGAL_AID], referral_sharing=False, version=2, event=updated
        ),
        profile(  # a new need of a known household
            ids["d"],
            needs=[NeedType.LEGAL_AID, NeedType.PSYCHOSOCIAL_SUPPORT],
            version=3,
            event=updated,
        ),
        profile(ids["d"], needs=[NeedType.VOLUNTARY_RETURN], version=2),  # older: ignored
        profile(ids["e"], needs=[NeedType.LEGAL_AID], version=4),  # older: ignored
        profile(ids["f"], needs=[NeedType.LEGAL_AID], referral_sharing=False),  # a task
        profile(ids["f"], needs=[NeedType.LEGAL_AID], version=2, event=updated),  # resolved
        profile(ids["g"], needs=medical, **scarce),  # the scarce provider's second slot
        profile(ids["h"], needs=medical, **scarce),  # none left: the managers' queue
        HouseholdErased(household_id=ids["a"], site_id="MDA-CHI"),
        profile(ids["a"], needs=medical, version=2, **scarce),  # after erasure: new again
        HouseholdsMerged(surviving_id=ids["d"], merged_id=ids["m"], site_id="MDA-CHI"),
        profile(ids["m"], needs=[NeedType.MEDICAL_CARE], version=2),  # after its merge
        profile(ids["j"], needs=medical, status=HouseholdStatus.PENDING_REVIEW),  # referred
        profile(ids["k"], needs=medical, status=HouseholdStatus.DEACTIVATED),  # not referred
    ]
    return [wrap(e) for e in before], [wrap(e) for e in batch]


async def test_a_batch_leaves_what_its_events_one_by_one_leave(
    make_consumer: Make, caplog: pytest.LogCaptureFixture
) -> None:
    before, batch = mixed_batch()
    together, one_by_one = await make_consumer(), await make_consumer()
    for consumer in (together, one_by_one):
        for record in records(before):
            assert await consumer.events.process(HOUSEHOLDS, record) == "applied"

    with caplog.at_level(logging.WARNING, logger="shared.consumer"):
        outcomes = await together.events.process_batch(HOUSEHOLDS, records(batch))
    assert outcomes == ["applied"] * len(batch)
    assert not [r for r in caplog.records if "batch failed" in r.getMessage()]
    for record in records(batch):
        assert await one_by_one.events.process(HOUSEHOLDS, record) == "applied"

    expected = await state(one_by_one)
    assert await state(together) == expected
    # the mix did what it is meant to: the scarce provider's two slots, then the queue
    scarce = [r for r in expected["referrals"] if r[5] == "Scarce" or r[2] == "unassigned"]
    assert sorted(r[2] for r in scarce) == ["sent", "sent", "unassigned"]
    assert "consent_withdrawn" in {r[8] for r in expected["outbox"]}
    assert [r[2:4] for r in expected["consent_tasks"]] == [("resolved", "referred")]
    versions = {row[0]: row[3] for row in expected["households"]}
    assert versions[before[3].data.household_id] == 3  # d: its older version ignored
    assert versions[before[1].data.household_id] == 5  # e: likewise


HOUSEHOLDS_IN_BATCH = 20


async def test_a_batch_takes_its_households_in_one_statement(make_consumer: Make) -> None:
    """Households with nothing to refer: the batch's inbox claim and one statement for the
    read model. New households' referrals: their candidate providers locked and counted in
    one statement, and the referrals with their history in one more; their second versions,
    referring nothing new, one more statement for the read model; new households' consent
    tasks, one statement; the outbox is written once."""
    consumer = await make_consumer()
    quiet = [wrap(profile()) for _ in range(HOUSEHOLDS_IN_BATCH)]
    with sent_statements(consumer.engine) as sent:
        outcomes = await consumer.events.process_batch(HOUSEHOLDS, records(quiet))
    assert outcomes == ["applied"] * HOUSEHOLDS_IN_BATCH
    assert len(sent) == 2, sent

    households = [uuid.uuid4() for _ in range(HOUSEHOLDS_IN_BATCH // 2)]
    referred = [
        wrap(profile(h, needs=[NeedType.LEGAL_AID], version=v, event=event))
        for v, event in ((1, HouseholdRegistered), (2, HouseholdUpdated))
        for h in households
    ]
    with sent_statements(consumer.engine) as sent:
        outcomes = await consumer.events.process_batch(HOUSEHOLDS, records(referred))
    assert outcomes == ["applied"] * HOUSEHOLDS_IN_BATCH
    referrals = await consumer.rows("SELECT status, count(*) FROM referral GROUP BY status")
    assert referrals == [("sent", len(households))]
    # the inbox claim, two runs of the read model, routing, the referrals, the outbox
    assert len(sent) == 6, sent

    mixed = [
        wrap(profile(needs=[NeedType.LEGAL_AID], referral_sharing=i % 2 == 0))
        for i in range(HOUSEHOLDS_IN_BATCH)
    ]
    with sent_statements(consumer.engine) as sent:
        outcomes = await consumer.events.process_batch(HOUSEHOLDS, records(mixed))
    assert outcomes == ["applied"] * HOUSEHOLDS_IN_BATCH
    tasks = await consumer.rows("SELECT status, count(*) FROM consent_task GROUP BY status")
    assert tasks == [("open", HOUSEHOLDS_IN_BATCH // 2)]
    # the inbox claim, the read model, routing, the referrals, the consent tasks, the outbox
    assert len(sent) == 6, sent


async def test_a_household_inserted_meanwhile_fails_the_batch_and_is_applied_again(
    make_consumer: Make, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = await make_consumer()
    household = uuid.uuid4()
    batch = [
        wrap(profile()),
        wrap(profile(household, needs=[NeedType.LEGAL_AID], version=2)),
        wrap(profile()),
    ]
    async with consumer.engine.connect() as other:
        await other.begin()
        await other.execute(  # another transaction's first insert, not committed yet
            sa.text(
                "INSERT INTO referral_household (household_id, site_id, status, version,"
                " referral_sharing, updated_at) VALUES (:h, 'MDA-CHI', 'active', 1, true, now())"
            ),
            {"h": household},
        )
        with caplog.at_level(logging.WARNING, logger="shared.consumer"):
            applying = asyncio.create_task(
                consumer.events.process_batch(HOUSEHOLDS, records(batch))
            )

            async def waiting_for_the_insert() -> bool:
                waiting = await consumer.rows(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
                return waiting == [(1,)]

            await eventually(waiting_for_the_insert, timeout=10, what="the batch waits")
            await other.commit()
            assert await applying == ["applied"] * 3
    assert [r for r in caplog.records if "batch failed" in r.getMessage()]
    # applied again on its own: the household known at version 1, its legal need new
    (view,) = await consumer.rows(
        "SELECT version, profile IS NOT NULL FROM referral_household WHERE household_id = :h",
        h=household,
    )
    assert view == (2, True)
    referrals = await consumer.rows(
        "SELECT service_type, status FROM referral WHERE household_id = :h", h=household
    )
    assert referrals == [("legal", "sent")]
    households = await consumer.rows("SELECT count(*) FROM referral_household")
    assert households == [(3,)]


async def test_batches_routed_at_once_never_exceed_a_providers_capacity(
    make_consumer: Make,
) -> None:
    """Two consumers (two processes, say) route a batch of six new households each at
    once; the scarce provider's two slots are taken once, the other ten wait in the
    managers' queue."""
    first = await make_consumer()
    second = EventConsumer(
        service=unique("referral"),
        sessions=first.events.sessions,
        dead_letters=first.events.dead_letters,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HAVEN_REFERRAL_DATABASE_URL", str(first.engine.url))
        settings = load_settings("referral", ReferralSettings)
    handlers.register(second, handler_runtime(settings, FakeClock(START)))
    medical = [(NeedType.MEDICAL_CARE, Priority.URGENT)]
    batches = [
        [wrap(profile(needs=medical, admin1=SCARCE_REGION, admin2=None)) for _ in range(6)]
        for _ in range(2)
    ]
    outcomes = await asyncio.gather(
        first.events.process_batch(HOUSEHOLDS, records(batches[0])),
        second.process_batch(HOUSEHOLDS, records(batches[1])),
    )
    assert outcomes == [["applied"] * 6] * 2
    statuses = await first.rows(
        "SELECT r.status, p.name FROM referral r LEFT JOIN provider p ON p.id = r.provider_id"
    )
    assert sorted(statuses, key=str) == sorted(
        [("sent", "Scarce")] * 2 + [("unassigned", None)] * 10, key=str
    )

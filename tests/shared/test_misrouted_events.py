"""A consumer refuses an event that does not belong to the topic it arrived on, or whose
source is not the topic's producer: it is dead-lettered with the reason and has no effect."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from aiokafka import ConsumerRecord

from shared.consumer import EventConsumer, RetryPolicy
from shared.db import create_engine, session_factory
from shared.events.catalog import CONTACTS, Catalog
from shared.events.envelope import Envelope, headers_to_dict
from shared.events.registration import HouseholdContact, HouseholdErased
from shared.kafka import LazyProducer, ensure_topics
from tests.support import migrated_database, read_topic_to_end, unique
from tests.support.topics import throwaway_topic


def record(topic: str, envelope: Envelope[Any], offset: int) -> ConsumerRecord[bytes, bytes]:
    key = str(uuid.uuid4()).encode()
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=envelope.kafka_value(),
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=0,
        headers=envelope.kafka_headers(),
    )


async def test_forged_and_misrouted_events_are_dead_lettered_with_their_reason(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    households = throwaway_topic(
        "haven.test.misrouted", (HouseholdErased,), consumer="notifications"
    )
    await ensure_topics(bootstrap, Catalog([households]))
    engine = create_engine(await migrated_database(infra, "notifications"))
    applied: list[uuid.UUID] = []
    events = EventConsumer(
        service=unique("misrouted"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(bootstrap, client_id="misrouted-test"),
        retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=Catalog([households, CONTACTS]),  # HouseholdContact is a catalogued type
    )

    @events.on(HouseholdErased)
    async def erase(session: Any, envelope: Envelope[HouseholdErased]) -> None:
        applied.append(envelope.data.household_id)
        await session.execute(sa.text("SELECT 1"))

    @events.on(HouseholdContact)
    async def contact(session: Any, envelope: Envelope[HouseholdContact]) -> None:
        applied.append(envelope.data.household_id)

    genuine = Envelope.wrap(
        HouseholdErased(household_id=uuid.uuid4(), site_id="S"), source="haven/registration"
    )
    forged_source = Envelope.wrap(
        HouseholdErased(household_id=uuid.uuid4(), site_id="S"), source="haven/distribution"
    )
    wrong_topic = Envelope.wrap(
        HouseholdContact(
            household_id=uuid.uuid4(),
            case_number="MDA-CHI-000001",
            site_id="MDA-CHI",
            phone="+37360000001",
            preferred_language="ro",
            contact_consent=True,
        ),
        source="haven/registration",
    )
    outcomes = [
        await events.process(households, record(households.name, envelope, offset))
        for offset, envelope in enumerate((genuine, forged_source, wrong_topic))
    ]
    await events.dead_letters.stop()
    await engine.dispose()

    assert outcomes == ["applied", "dead_lettered", "dead_lettered"]
    assert applied == [genuine.data.household_id]
    dead = [headers_to_dict(r.headers) for r in await read_topic_to_end(bootstrap, households.dlq)]
    reasons = [h["haven_dlq_reason"] for h in dead]
    assert any("source 'haven/distribution' does not produce topic" in r for r in reasons)
    assert any("'HouseholdContact' does not belong to topic" in r for r in reasons)
    assert not any("+37360000001" in r for r in reasons)

"""Dead letters about households are kept briefly and compacted by household, and an erasure
leaves a tombstone for the household on them; the contacts topic removes a withdrawn phone
within a stated bound."""

from __future__ import annotations

import dataclasses
import uuid

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer, RetryPolicy
from shared.db import create_engine, session_factory
from shared.events.catalog import CONTACTS, DAY_MS, HOUSEHOLDS, REFERRALS, Catalog
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdDeactivated, HouseholdErased
from shared.kafka import LazyProducer, ensure_topics
from tests.support import eventually, migrated_database, read_topic_to_end, unique
from tests.support.topics import throwaway_topic


def test_household_dead_letters_are_short_lived_and_compacted_by_household() -> None:
    for topic in (HOUSEHOLDS, CONTACTS):
        config = topic.dead_letter_config()
        assert config["cleanup.policy"] == "compact,delete"
        assert int(config["retention.ms"]) == 7 * DAY_MS
        assert int(config["max.compaction.lag.ms"]) <= DAY_MS
    assert int(REFERRALS.dead_letter_config()["retention.ms"]) == 90 * DAY_MS
    contacts = CONTACTS.topic_config()
    assert contacts["cleanup.policy"] == "compact"
    assert int(contacts["max.compaction.lag.ms"]) <= DAY_MS  # a tombstone removes the phone
    assert int(contacts["segment.ms"]) <= DAY_MS  # ... also from the active segment


async def test_an_erasure_leaves_a_tombstone_for_the_household_on_the_dead_letters(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = dataclasses.replace(
        throwaway_topic("haven.test.dlq-erasure", (HouseholdDeactivated, HouseholdErased)),
        erasable_dead_letters=True,
    )
    await ensure_topics(bootstrap, Catalog([topic]))
    engine = create_engine(await migrated_database(infra, "distribution"))
    events = EventConsumer(
        service=unique("dlqerasure"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(bootstrap, client_id="dlq-erasure-test"),
        retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=Catalog([topic]),
    )

    @events.on(HouseholdDeactivated)
    async def deactivate(session, envelope: Envelope[HouseholdDeactivated]) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("cannot deactivate here")

    @events.on(HouseholdErased)
    async def erase(session, envelope: Envelope[HouseholdErased]) -> None:  # type: ignore[no-untyped-def]
        pass

    household = uuid.uuid4()
    key = str(household).encode()
    failing = Envelope.wrap(
        HouseholdDeactivated(household_id=household, site_id="S", reason_code="left", version=2),
        source="haven/registration",
    )
    erased = Envelope.wrap(
        HouseholdErased(household_id=household, site_id="S"), source="haven/registration"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for envelope in (failing, erased):
            await producer.send_and_wait(
                topic.name, envelope.kafka_value(), key=key, headers=envelope.kafka_headers()
            )
    finally:
        await producer.stop()

    broker = KafkaBroker(bootstrap, consumer_only=True)
    events.subscribe(broker)
    await broker.start()
    try:

        async def dead_letter_then_tombstone() -> bool:
            records = [r for r in await read_topic_to_end(bootstrap, topic.dlq) if r.key == key]
            return [r.value is None for r in records] == [False, True]

        await eventually(dead_letter_then_tombstone, timeout=60, what="the tombstone")
    finally:
        await broker.stop()
        await events.dead_letters.stop()
        await engine.dispose()

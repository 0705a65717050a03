"""Malformed records and a handler that always fails end in the DLQ with their reasons, and
later good records on the same partition are still processed — against the real broker."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer, RetryPolicy
from shared.db import create_engine, session_factory
from shared.events.catalog import Catalog
from shared.events.envelope import Envelope, headers_to_dict
from shared.events.registration import HouseholdErased
from shared.kafka import LazyProducer, ensure_topics
from tests.support import erasures_topic, eventually, migrated_database, read_topic_to_end, unique


async def test_poison_records_are_dead_lettered_and_the_partition_moves_on(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    # A private topic, so records of other tests on the shared broker do not interfere.
    households = erasures_topic("haven.test.households", partitions=2)
    catalog = Catalog([households])
    await ensure_topics(bootstrap, catalog)
    url = await migrated_database(infra, "distribution")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE erased (household_id uuid PRIMARY KEY)"))

    failing = uuid.uuid4()
    good = uuid.uuid4()
    key = unique("same-key").encode()  # one key, so one partition, in this order
    service = unique("dlqcheck")
    events = EventConsumer(
        service=service,
        sessions=session_factory(engine),
        dead_letters=LazyProducer(bootstrap, client_id="dlq-test"),
        retry=RetryPolicy(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.05),
        catalog=catalog,
    )
    attempts: list[uuid.UUID] = []

    @events.on(HouseholdErased)
    async def erase(session, envelope: Envelope[HouseholdErased]) -> None:  # type: ignore[no-untyped-def]
        attempts.append(envelope.data.household_id)
        if envelope.data.household_id == failing:
            raise RuntimeError("provider directory unavailable for this site")
        await session.execute(
            sa.text("INSERT INTO erased VALUES (:h)"), {"h": envelope.data.household_id}
        )

    def erased(household: uuid.UUID) -> Envelope[HouseholdErased]:
        return Envelope.wrap(
            HouseholdErased(household_id=household, site_id="S"), source="haven/registration"
        )

    poison = erased(failing)
    malformed = erased(uuid.uuid4())
    fine = erased(good)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            households.name, b'{"household_id": 42', key=key, headers=malformed.kafka_headers()
        )
        await producer.send_and_wait(
            households.name, poison.kafka_value(), key=key, headers=poison.kafka_headers()
        )
        await producer.send_and_wait(
            households.name, fine.kafka_value(), key=key, headers=fine.kafka_headers()
        )
        # The good record again: a redelivery must have no second effect.
        await producer.send_and_wait(
            households.name, fine.kafka_value(), key=key, headers=fine.kafka_headers()
        )
    finally:
        await producer.stop()

    broker = KafkaBroker(bootstrap, consumer_only=True)
    events.subscribe(broker)
    await broker.start()
    try:

        async def good_applied() -> bool:
            async with engine.connect() as conn:
                return bool(
                    await conn.scalar(
                        sa.text("SELECT count(*) FROM erased WHERE household_id = :h"), {"h": good}
                    )
                )

        await eventually(good_applied, timeout=60, what="the good record after the poison ones")
        mine: list[dict[str, str]] = []

        async def both_dead_lettered() -> bool:
            records = await read_topic_to_end(bootstrap, households.dlq)
            headers = [headers_to_dict(r.headers) for r in records]
            mine[:] = [h for h in headers if h.get("haven_dlq_consumer") == service]
            return len(mine) >= 2

        await eventually(both_dead_lettered, timeout=30, what="two dead letters")
    finally:
        await broker.stop()
        await events.dead_letters.stop()

    # retried, then given up (plus the try in a batch, when it shared one with the good record)
    assert attempts.count(failing) in (3, 4)
    assert attempts.count(good) == 1  # the duplicate was skipped by the inbox
    reasons = sorted(h["haven_dlq_reason"] for h in mine)
    assert len(mine) == 2
    assert reasons[0].startswith("RuntimeError: provider directory unavailable")
    assert reasons[1].startswith("malformed event")
    by_reason = {h["haven_dlq_reason"][:9]: h for h in mine}
    assert by_reason["RuntimeEr"]["haven_dlq_attempts"] == "3"
    assert by_reason["RuntimeEr"]["ce_id"] == str(poison.id)  # original headers kept
    assert by_reason["malformed"]["haven_dlq_original_topic"] == households.name
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM erased")) == 1
    await engine.dispose()

"""A service's consumer reads all its topics through one Kafka consumer: the group has one
member (one join when the service starts, not one rebalance per topic), and events of every
topic are handled — against the real broker."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer
from shared.db import create_engine, session_factory
from shared.events.catalog import Catalog
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdDeactivated, HouseholdErased
from shared.kafka import LazyProducer, ensure_topics
from tests.support import eventually, migrated_database, throwaway_topic, unique


async def test_one_consumer_group_member_handles_every_topic(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    erasures = throwaway_topic("haven.test.erasures", (HouseholdErased,), partitions=2)
    deactivations = throwaway_topic(
        "haven.test.deactivations", (HouseholdDeactivated,), partitions=2
    )
    catalog = Catalog([erasures, deactivations])
    await ensure_topics(bootstrap, catalog)
    engine = create_engine(await migrated_database(infra, "distribution"))
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE seen (household_id uuid, kind text)"))
    consumer = EventConsumer(
        service=unique("topics"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(bootstrap, client_id="topics-test"),
        catalog=catalog,
    )

    async def remember(session, household_id: uuid.UUID, kind: str) -> None:  # type: ignore[no-untyped-def]
        await session.execute(
            sa.text("INSERT INTO seen VALUES (:h, :k)"), {"h": household_id, "k": kind}
        )

    @consumer.on(HouseholdErased)
    async def erase(session, envelope: Envelope[HouseholdErased]) -> None:  # type: ignore[no-untyped-def]
        await remember(session, envelope.data.household_id, "erased")

    @consumer.on(HouseholdDeactivated)
    async def deactivate(session, envelope: Envelope[HouseholdDeactivated]) -> None:  # type: ignore[no-untyped-def]
        await remember(session, envelope.data.household_id, "deactivated")

    erased = Envelope.wrap(
        HouseholdErased(household_id=uuid.uuid4(), site_id="S"), source="haven/registration"
    )
    deactivated = Envelope.wrap(
        HouseholdDeactivated(
            household_id=uuid.uuid4(), site_id="S", reason_code="moved", version=2
        ),
        source="haven/registration",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for topic, envelope in ((erasures, erased), (deactivations, deactivated)):
            await producer.send_and_wait(
                topic.name, envelope.kafka_value(), key=b"k", headers=envelope.kafka_headers()
            )
    finally:
        await producer.stop()

    broker = KafkaBroker(bootstrap, consumer_only=True)
    consumer.subscribe(broker)
    await broker.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:

        async def both_handled() -> bool:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT household_id, kind FROM seen"))
                return len(rows.all()) == 2

        await eventually(both_handled, timeout=60, what="an event of each topic")
        (response,) = await admin.describe_consumer_groups([consumer.group_id])
        (group,) = response.groups
        members = group[5]
        assert len(members) == 1, "one Kafka consumer for all of the service's topics"
        async with engine.connect() as conn:
            rows = set((await conn.execute(sa.text("SELECT household_id, kind FROM seen"))).all())
        assert rows == {
            (erased.data.household_id, "erased"),
            (deactivated.data.household_id, "deactivated"),
        }
    finally:
        await admin.close()
        await broker.stop()
        await consumer.dead_letters.stop()
        await engine.dispose()

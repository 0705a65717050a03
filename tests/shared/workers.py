"""Processes the messaging-guarantee tests start and kill: an outbox relay and a checking consumer.

python -m tests.shared.workers relay <database_url> <bootstrap>
python -m tests.shared.workers consumer <database_url> <bootstrap>
"""

from __future__ import annotations

import asyncio
import signal
import sys

import sqlalchemy as sa
from faststream.kafka import KafkaBroker

from shared.consumer import EventConsumer, RetryPolicy
from shared.db import create_engine, session_factory
from shared.events.catalog import Catalog, Topic
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdUpdated
from shared.kafka import LazyProducer
from shared.outbox import OutboxRelay

CONSUMER_NAME = "foundation-check"

APPLIED_DDL = """
CREATE TABLE IF NOT EXISTS applications (
    id bigserial PRIMARY KEY,
    household_id uuid NOT NULL,
    version int NOT NULL,
    event_id uuid NOT NULL
);
CREATE TABLE IF NOT EXISTS order_violations (household_id uuid, expected int, got int);
"""


def private_catalog(topic: str) -> Catalog:
    """A catalog of one test topic carrying HouseholdUpdated, isolated from other tests."""
    return Catalog(
        [
            Topic(
                name=topic,
                description="foundation test",
                key="household_id",
                partitions=6,
                producers=("registration",),
                consumers=("distribution",),
                events=(HouseholdUpdated,),
            )
        ]
    )


async def relay(database_url: str, bootstrap: str, topic: str) -> None:
    engine = create_engine(database_url)
    producer = LazyProducer(bootstrap, client_id="test-relay")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await OutboxRelay(
        engine, producer, service="registration", batch_size=200, poll_seconds=0.2
    ).run(stop)
    await producer.stop()


async def consumer(database_url: str, bootstrap: str, topic: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        for statement in APPLIED_DDL.split(";"):
            if statement.strip():
                await conn.execute(sa.text(statement))
    producer = LazyProducer(bootstrap, client_id="test-consumer")
    events = EventConsumer(
        service=CONSUMER_NAME,
        sessions=session_factory(engine),
        dead_letters=producer,
        retry=RetryPolicy(max_attempts=3, initial_backoff_seconds=0.05),
        catalog=private_catalog(topic),
    )

    @events.on(HouseholdUpdated)
    async def apply(session, envelope: Envelope[HouseholdUpdated]) -> None:  # type: ignore[no-untyped-def]
        data = envelope.data
        last = await session.scalar(
            sa.text("SELECT coalesce(max(version), 0) FROM applications WHERE household_id = :h"),
            {"h": data.household_id},
        )
        if data.version != last + 1:
            await session.execute(
                sa.text("INSERT INTO order_violations VALUES (:h, :e, :g)"),
                {"h": data.household_id, "e": last + 1, "g": data.version},
            )
        await session.execute(
            sa.text(
                "INSERT INTO applications (household_id, version, event_id) VALUES (:h, :v, :e)"
            ),
            {"h": data.household_id, "v": data.version, "e": envelope.id},
        )

    broker = KafkaBroker(bootstrap, consumer_only=True)
    events.subscribe(broker)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await broker.start()
    print("consumer ready", flush=True)
    await stop.wait()
    await broker.stop()
    await producer.stop()


if __name__ == "__main__":
    role, url, bootstrap, topic = sys.argv[1:5]
    asyncio.run({"relay": relay, "consumer": consumer}[role](url, bootstrap, topic))

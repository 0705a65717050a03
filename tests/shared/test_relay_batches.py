"""The outbox relay sends record batches per partition: with batches too small for a
partition's share of a round, it sends several waves, and every key still arrives in order."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from shared.db import create_engine, session_factory
from shared.kafka import LazyProducer, ensure_topics
from shared.outbox import OutboxRelay, add_event, outbox_table
from tests.shared.test_outbox_exactly_once import update
from tests.shared.workers import private_catalog
from tests.support import migrated_database, read_topic, unique

KEYS = 5
VERSIONS = 40


async def test_relay_keeps_order_per_key_across_many_small_batches(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = unique("haven.test.relay-batches")
    catalog = private_catalog(topic)
    await ensure_topics(bootstrap, catalog)
    engine = create_engine(await migrated_database(infra, "registration"))
    households = [uuid.uuid4() for _ in range(KEYS)]
    async with session_factory(engine)() as session, session.begin():
        for version in range(1, VERSIONS + 1):
            for household in households:
                await add_event(
                    session,
                    update(household, version),
                    key=str(household),
                    source="haven/registration",
                    catalog=catalog,
                )
    # ~1 KB events in 2 KB batches: each partition's rows need many waves in one round.
    producer = LazyProducer(bootstrap, client_id="test-relay-batches", max_batch_bytes=2048)
    relay = OutboxRelay(engine, producer, service="registration", batch_size=500)
    try:
        assert await relay.drain_once() == KEYS * VERSIONS
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(outbox_table)) == 0
    finally:
        await producer.stop()
        await engine.dispose()

    records = await read_topic(bootstrap, topic, expect=KEYS * VERSIONS)
    assert len(records) == KEYS * VERSIONS
    assert len({r.partition for r in records}) > 1
    for household in households:
        mine = [r for r in records if r.key == str(household).encode()]
        assert len({r.partition for r in mine}) == 1
        mine.sort(key=lambda r: r.offset)
        assert [json.loads(r.value)["version"] for r in mine] == list(range(1, VERSIONS + 1))

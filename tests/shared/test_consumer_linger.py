"""A subscriber woken for fewer records than a batch waits ``batch_linger_ms`` for the records
right behind them and handles them all in one transaction, in partition order, and commits
the offsets only once their effects are durable."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from aiokafka import ConsumerRecord, TopicPartition
from faststream import ContextRepo

from shared.consumer import EventConsumer
from shared.db import create_engine, session_factory
from shared.events.catalog import Catalog
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdErased
from shared.kafka import LazyProducer
from tests.support import consumer_record, erasures_topic, migrated_database, unique


def erased() -> Envelope[HouseholdErased]:
    return Envelope.wrap(
        HouseholdErased(household_id=uuid.uuid4(), site_id="S"), source="haven/registration"
    )


class FakeMessage:
    """The parts of FastStream's KafkaMessage the consumer uses, with a fake AIOKafkaConsumer."""

    def __init__(self, fetched: list[ConsumerRecord], behind: list[ConsumerRecord], check) -> None:  # type: ignore[no-untyped-def]
        self.raw_message = tuple(fetched)
        self.consumer = self
        self._behind = behind
        self._check = check
        self.asked_for: int | None = None
        self.acked_with: list[uuid.UUID] | None = None

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.asked_for = max_records
        behind, self._behind = self._behind, []
        return {TopicPartition(behind[0].topic, 0): behind} if behind else {}

    def highwater(self, tp: TopicPartition) -> int:
        return 0

    async def ack(self) -> None:
        self.acked_with = await self._check()


async def test_records_right_behind_join_the_batch_and_commit_after_their_effects(
    infra: Any,
) -> None:
    topic = erasures_topic("haven.test.linger")
    engine = create_engine(await migrated_database(infra, "distribution"))
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE erased (n serial, household_id uuid)"))
    consumer = EventConsumer(
        service=unique("linger"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(infra.kafka_bootstrap, client_id="linger-test"),
        catalog=Catalog([topic]),
        batch_size=10,
        batch_linger_ms=5,
    )
    transactions: list[int] = []

    @sa.event.listens_for(engine.sync_engine, "commit")
    def count_commit(*_: Any) -> None:
        transactions.append(1)

    @consumer.on(HouseholdErased)
    async def erase(session, envelope: Envelope[HouseholdErased]) -> None:  # type: ignore[no-untyped-def]
        await session.execute(
            sa.text("INSERT INTO erased (household_id) VALUES (:h)"),
            {"h": envelope.data.household_id},
        )

    async def durable() -> list[uuid.UUID]:
        async with engine.connect() as conn:  # another connection: only committed rows
            return list(await conn.scalars(sa.text("SELECT household_id FROM erased ORDER BY n")))

    events = [erased() for _ in range(4)]
    records = [
        consumer_record(e, topic=topic.name, key="k", offset=i) for i, e in enumerate(events)
    ]
    message = FakeMessage(records[:1], records[1:], durable)
    context = ContextRepo()
    try:
        handle = consumer._make_handler({topic.name: topic}, context)
        with context.scope("message", message):
            await handle()
        assert message.asked_for == 9  # the batch size less what was fetched
        expected = [e.data.household_id for e in events]
        assert message.acked_with == expected, "committed after every effect, in order"
        assert transactions == [1], "the gathered records share one transaction"
    finally:
        await consumer.dead_letters.stop()
        await engine.dispose()

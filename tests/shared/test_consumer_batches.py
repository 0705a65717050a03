"""A fetched batch is applied in one transaction; when one event fails, the batch is rolled
back and its events are handled one by one: the others applied once, the failing one retried
and dead-lettered, redeliveries (even within one batch) skipped."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from aiokafka import ConsumerRecord

from shared.consumer import EventConsumer, RetryPolicy, acting_on, distinct_runs
from shared.db import create_engine, session_factory
from shared.events.catalog import Catalog
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdDeactivated, HouseholdErased
from shared.kafka import LazyProducer, ensure_topics
from shared.telemetry import correlation_id_var
from tests.support import (
    consumer_record,
    erasures_topic,
    migrated_database,
    read_topic,
    throwaway_topic,
    unique,
)


def record(envelope: Envelope[Any], offset: int, topic: str) -> ConsumerRecord:
    return consumer_record(envelope, topic=topic, key="k", offset=offset)


async def test_a_batch_applies_together_and_falls_back_one_by_one_on_failure(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = erasures_topic("haven.test.batches")
    catalog = Catalog([topic])
    await ensure_topics(bootstrap, catalog)
    engine = create_engine(await migrated_database(infra, "distribution"))
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE erased (household_id uuid PRIMARY KEY)"))
    service = unique("batchcheck")
    consumer = EventConsumer(
        service=service,
        sessions=session_factory(engine),
        dead_letters=LazyProducer(bootstrap, client_id="batch-test"),
        retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=catalog,
    )
    failing = uuid.uuid4()
    calls: list[uuid.UUID] = []

    @consumer.on(HouseholdErased)
    async def erase(session, envelope: Envelope[HouseholdErased]) -> None:  # type: ignore[no-untyped-def]
        calls.append(envelope.data.household_id)
        if envelope.data.household_id == failing:
            raise RuntimeError("cannot erase this one")
        await session.execute(
            sa.text("INSERT INTO erased VALUES (:h)"), {"h": envelope.data.household_id}
        )

    def erased(household: uuid.UUID) -> Envelope[HouseholdErased]:
        return Envelope.wrap(
            HouseholdErased(household_id=household, site_id="S"), source="haven/registration"
        )

    try:
        first = [erased(uuid.uuid4()) for _ in range(3)]
        together = [record(e, i, topic.name) for i, e in enumerate([*first, first[0]])]
        outcomes = await consumer.process_batch(topic, together)
        assert outcomes == ["applied", "applied", "applied", "duplicate"]
        assert len(calls) == 3  # one transaction, each event once
        assert await consumer.process_batch(topic, together) == ["duplicate"] * 4

        calls.clear()
        second = [erased(uuid.uuid4()), erased(failing), erased(uuid.uuid4())]
        mixed = [record(e, 10 + i, topic.name) for i, e in enumerate(second)]
        outcomes = await consumer.process_batch(topic, mixed)
        assert outcomes == ["applied", "dead_lettered", "applied"]
        # the batch try, then one by one: the failing event twice, as the policy says
        assert calls.count(failing) == 3
        assert calls.count(second[2].data.household_id) == 1  # never reached in the batch
        async with engine.connect() as conn:
            stored = set(await conn.scalars(sa.text("SELECT household_id FROM erased")))
        assert stored == {e.data.household_id for e in [*first, second[0], second[2]]}
        letters = await read_topic(bootstrap, topic.dlq, expect=1, timeout=10)
        assert [r.value for r in letters] == [second[1].kafka_value()]
    finally:
        await consumer.dead_letters.stop()
        await engine.dispose()


async def test_events_nobody_here_handles_do_not_split_a_batch(infra) -> None:
    topic = throwaway_topic("haven.test.ignored", (HouseholdErased, HouseholdDeactivated))
    engine = create_engine(await migrated_database(infra, "distribution"))
    consumer = EventConsumer(
        service=unique("ignoring"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(infra.kafka_bootstrap, client_id="ignore-test"),
        retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=Catalog([topic]),
    )
    transactions: list[int] = []

    @consumer.on(HouseholdErased)
    async def erase(session, envelope: Envelope[HouseholdErased]) -> None:  # type: ignore[no-untyped-def]
        transactions.append(await session.scalar(sa.text("SELECT txid_current()")))

    def erased() -> Envelope[HouseholdErased]:
        return Envelope.wrap(
            HouseholdErased(household_id=uuid.uuid4(), site_id="S"), source="haven/registration"
        )

    def deactivated() -> Envelope[HouseholdDeactivated]:
        payload = HouseholdDeactivated(
            household_id=uuid.uuid4(), site_id="S", reason_code="moved", version=2
        )
        return Envelope.wrap(payload, source="haven/registration")

    try:
        envelopes = [erased(), deactivated(), erased(), deactivated(), erased()]
        records = [record(e, i, topic.name) for i, e in enumerate(envelopes)]
        outcomes = await consumer.process_batch(topic, records)
        assert outcomes == ["applied", "ignored", "applied", "ignored", "applied"]
        assert len(transactions) == 3 and len(set(transactions)) == 1  # one transaction
    finally:
        await consumer.dead_letters.stop()
        await engine.dispose()


async def test_a_batch_handler_takes_consecutive_events_together(infra) -> None:
    """Consecutive events of a batch handler arrive in one call, in order, without the
    duplicates; an event of another handler in between starts a new call; when the batch
    fails, each event is handed over alone; ``acting_on`` gives each its correlation id."""
    topic = throwaway_topic("haven.test.batched", (HouseholdErased, HouseholdDeactivated))
    await ensure_topics(infra.kafka_bootstrap, Catalog([topic]))  # for the dead letter
    engine = create_engine(await migrated_database(infra, "distribution"))
    consumer = EventConsumer(
        service=unique("batched"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(infra.kafka_bootstrap, client_id="batched-test"),
        retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=Catalog([topic]),
    )
    calls: list[list[str]] = []
    correlations: list[str | None] = []
    failing: set[str] = set()

    @consumer.on_batch(HouseholdErased)
    async def erase_all(session, envelopes) -> None:  # type: ignore[no-untyped-def]
        calls.append([e.subject for e in envelopes])
        for envelope in envelopes:
            with acting_on(envelope):
                correlations.append(correlation_id_var.get())
        if failing & {e.subject for e in envelopes}:
            raise RuntimeError("one of them cannot be erased")

    @consumer.on(HouseholdDeactivated)
    async def deactivate(session, envelope) -> None:  # type: ignore[no-untyped-def]
        calls.append([envelope.subject])

    def erased(name: str) -> Envelope[HouseholdErased]:
        payload = HouseholdErased(household_id=uuid.uuid4(), site_id="S")
        return Envelope.wrap(
            payload, source="haven/registration", subject=name, correlation_id=f"corr-{name}"
        )

    def deactivated(name: str) -> Envelope[HouseholdDeactivated]:
        payload = HouseholdDeactivated(
            household_id=uuid.uuid4(), site_id="S", reason_code="moved", version=2
        )
        return Envelope.wrap(payload, source="haven/registration", subject=name)

    try:
        a, b, c, d = erased("a"), erased("b"), erased("c"), erased("d")
        envelopes = [a, b, a, deactivated("x"), c, d]
        records = [record(e, i, topic.name) for i, e in enumerate(envelopes)]
        outcomes = await consumer.process_batch(topic, records)
        assert outcomes == ["applied", "applied", "duplicate", "applied", "applied", "applied"]
        assert calls == [["a", "b"], ["x"], ["c", "d"]]
        assert correlations == ["corr-a", "corr-b", "corr-c", "corr-d"]

        calls.clear()
        failing.add("f")
        envelopes = [erased("e"), erased("f"), erased("g")]
        records = [record(e, 10 + i, topic.name) for i, e in enumerate(envelopes)]
        outcomes = await consumer.process_batch(topic, records)
        assert outcomes == ["applied", "dead_lettered", "applied"]
        assert calls == [["e", "f", "g"], ["e"], ["f"], ["f"], ["g"]]
    finally:
        await consumer.dead_letters.stop()
        await engine.dispose()


def test_distinct_runs_never_repeat_a_key_and_keep_the_order() -> None:
    items = ["a1", "b1", "a2", "c1", "a3", "b2", "b3"]
    runs = distinct_runs(items, key=lambda item: item[0])
    assert runs == [["a1", "b1"], ["a2", "c1"], ["a3", "b2"], ["b3"]]
    assert distinct_runs([], key=lambda item: item) == []

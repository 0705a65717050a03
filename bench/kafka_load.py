"""Kafka side of the benchmark: real-format event backlogs, raw client ceilings, group offsets.

Events are what registration publishes: ``HouseholdRegistered`` in the CloudEvents binary
binding (``shared.events.envelope``), keyed by household id, produced with Haven's own
producer settings (``shared.kafka.create_producer``: idempotent, ``acks=all``, same linger).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import date

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bench.generator import HouseholdGenerator, registered_event
from shared.events.envelope import Envelope
from shared.kafka import create_producer

SOURCE = "haven/registration"
BACKLOG_CASE_BASE = 9_000_000
CONSUMER_MAX_POLL_RECORDS = 100  # as shared.consumer.EventConsumer subscribes
FIRST_RECORD_TIMEOUT_SECONDS = 30.0

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers

_events_cache: dict[tuple[int, date], tuple[HouseholdGenerator, list[Record]]] = {}


def registered_records(count: int, *, seed: int, today: date) -> list[Record]:
    """``count`` HouseholdRegistered records of synthetic households (cached per process, so
    the ceiling and the backlog send the same events without building them twice)."""
    generator, cached = _events_cache.setdefault(
        (seed, today), (HouseholdGenerator(seed, today=today), [])
    )
    if len(cached) < count:
        for index in range(len(cached), count):
            household = generator.household()
            household_id = uuid.uuid4()
            case_number = f"{household.site.id}-{BACKLOG_CASE_BASE + index}"
            payload = registered_event(
                household, household_id=household_id, case_number=case_number, today=today
            )
            envelope = Envelope.wrap(
                payload, source=SOURCE, subject=f"household/{household_id}", actor="bench"
            )
            key = str(household_id).encode()
            cached.append((key, envelope.kafka_value(), envelope.kafka_headers()))
    return cached[:count]


@dataclass(frozen=True)
class ProduceResult:
    events: int
    seconds: float
    mean_value_bytes: float

    @property
    def rate(self) -> float:
        return round(self.events / self.seconds, 1) if self.seconds else 0.0


async def produce_async(
    bootstrap: str, topic: str, count: int, *, seed: int, today: date
) -> ProduceResult:
    records = registered_records(count, seed=seed, today=today)
    producer = create_producer(bootstrap, client_id="haven-bench")
    await producer.start()
    try:
        began = time.perf_counter()
        pending = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*pending)
        seconds = time.perf_counter() - began
    finally:
        await producer.stop()
    mean_bytes = sum(len(value) for _, value, _ in records) / max(1, len(records))
    return ProduceResult(len(records), seconds, round(mean_bytes, 1))


def produce(bootstrap: str, topic: str, count: int, *, seed: int, today: date) -> ProduceResult:
    """Produce as fast as the client allows (load-generator process entry point)."""
    return asyncio.run(produce_async(bootstrap, topic, count, seed=seed, today=today))


@dataclass(frozen=True)
class ConsumeResult:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return round(self.events / self.seconds, 1) if self.seconds else 0.0


async def consume_async(
    bootstrap: str, topic: str, count: int, *, max_seconds: float, commit_each: bool
) -> ConsumeResult:
    """Read ``count`` records from the start of ``topic`` in a fresh group; with
    ``commit_each`` the offset is committed after every record (as a manual-ack subscriber
    does). The clock starts at the first record, so the group join is not counted."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=CONSUMER_MAX_POLL_RECORDS,
    )
    await consumer.start()
    seen = 0
    began: float | None = None
    join_deadline = time.perf_counter() + FIRST_RECORD_TIMEOUT_SECONDS
    try:
        while seen < count:
            now = time.perf_counter()
            if began is None and now > join_deadline:
                break
            if began is not None and now - began > max_seconds:
                break
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for _ in records:
                    if began is None:
                        began = time.perf_counter()
                    seen += 1
                    if commit_each:
                        await consumer.commit()
        seconds = time.perf_counter() - began if began is not None else 0.0
    finally:
        await consumer.stop()
    return ConsumeResult(seen, seconds)


def consume(
    bootstrap: str, topic: str, count: int, *, max_seconds: float, commit_each: bool
) -> ConsumeResult:
    """Load-generator process entry point of :func:`consume_async`."""
    return asyncio.run(
        consume_async(bootstrap, topic, count, max_seconds=max_seconds, commit_each=commit_each)
    )


# --- orchestrator side: topics and consumer-group progress ---------------------------------


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="haven-bench")
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=name, num_partitions=partitions, replication_factor=1)]
        )
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


class GroupProgress:
    """Committed offsets of consumer groups and the end of a topic, summed over partitions."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="haven-bench")
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> GroupProgress:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def committed(self, group: str) -> int:
        offsets = await self._admin.list_consumer_group_offsets(group)
        return sum(
            meta.offset
            for partition, meta in offsets.items()
            if partition.topic == self.topic and meta.offset >= 0
        )

    async def lag(self, group: str) -> int:
        """Records the group has still to handle, over every partition it has committed on."""
        offsets = await self._admin.list_consumer_group_offsets(group)
        committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        if not committed:
            return 0
        await self._consumer._client.force_metadata_update()  # no public refresh
        ends = await self._consumer.end_offsets(list(committed))
        return sum(max(0, ends[tp] - offset) for tp, offset in committed.items())

    async def end(self) -> int:
        partitions = self._consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self._consumer._client.force_metadata_update()  # no public refresh
            partitions = self._consumer.partitions_for_topic(self.topic) or set()
        ends = await self._consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        return sum(ends.values())

"""The one topic reader of the tests, and the Kafka set-up around it: catalog topics, throw-away
topics, consumer groups started at a topic's end, whole-topic reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.events.catalog import CATALOG, HOUSEHOLDS, Service, Topic
from shared.events.envelope import headers_to_dict
from shared.events.registration import HouseholdErased
from shared.kafka import ensure_topics


async def create_catalog_topics(bootstrap: str) -> None:
    await ensure_topics(bootstrap, CATALOG)


def throwaway_topic(
    prefix: str,
    events: tuple[type[Any], ...],
    *,
    partitions: int = 1,
    consumer: Service = "distribution",
) -> Topic:
    """A throw-away topic of these household events for a consumer test."""
    return Topic(
        name=f"{prefix}_{uuid.uuid4().hex[:8]}",
        description="test",
        key="household_id",
        partitions=partitions,
        producers=("registration",),
        consumers=(consumer,),
        events=events,
    )


def erasures_topic(
    prefix: str, *, partitions: int = 1, consumer: Service = "distribution"
) -> Topic:
    """A throw-away topic of HouseholdErased events for a consumer test."""
    return throwaway_topic(prefix, (HouseholdErased,), partitions=partitions, consumer=consumer)


@dataclass(frozen=True)
class Record:
    """One record read from a topic, its CloudEvents headers decoded."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: bytes | None

    @property
    def type(self) -> str:
        """The event type (``ce_type``); empty for a record without one."""
        return self.headers.get("ce_type", "")

    @property
    def data(self) -> dict[str, Any]:
        """The event's JSON body; empty for a tombstone."""
        loaded: dict[str, Any] = json.loads(self.value) if self.value else {}
        return loaded


def decoded(record: ConsumerRecord[bytes, bytes]) -> Record:
    return Record(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode() if record.key is not None else None,
        headers=headers_to_dict(record.headers or ()),
        value=record.value,
    )


class TopicReader:
    """Collects what arrives on some topics from the moment it was opened (the shared broker's
    history is left alone); every record is kept for later waits."""

    def __init__(self, bootstrap: str, *topics: str | Topic) -> None:
        self.bootstrap = bootstrap
        self.topics = tuple(t.name if isinstance(t, Topic) else t for t in topics)
        self.records: list[Record] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return ", ".join(self.topics)

    async def open(self) -> TopicReader:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in await partitions_of(self.bootstrap, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before the test produces
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for part in batch.values():
                self.records.extend(decoded(record) for record in part)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def __aenter__(self) -> TopicReader:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def matching(self, match: Callable[[Record], bool]) -> list[Record]:
        return [r for r in self.records if match(r)]

    async def wait_for(
        self, match: Callable[[Record], bool], *, count: int = 1, timeout: float = 30.0
    ) -> list[Record]:
        """The matching records once ``count`` arrived; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(match)
            if len(found) >= count:
                return found
            if self._task is not None and self._task.done():
                self._task.result()  # the reader died: say why
            assert time.monotonic() < deadline, (
                f"{len(found)} of {count} records on {self.topic}: {found}"
            )
            await asyncio.sleep(0.1)

    async def for_key(
        self, key: str, *, count: int = 1, topic: str | None = None, timeout: float = 30.0
    ) -> list[Record]:
        """The records with ``key`` (on ``topic`` when given) once ``count`` arrived."""
        return await self.wait_for(
            lambda r: r.key == key and (topic is None or r.topic == topic),
            count=count,
            timeout=timeout,
        )

    async def for_household(
        self, household_id: str, *, count: int = 1, topic: str = HOUSEHOLDS.name
    ) -> list[Record]:
        return await self.for_key(household_id, count=count, topic=topic)

    async def settle(self, seconds: float = 1.5) -> None:
        """Let whatever arrives during ``seconds`` in (to check that something did NOT come)."""
        await asyncio.sleep(seconds)


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(partition["partition"] for partition in description["partitions"])


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the beginning until ``expect`` records arrived (or time is up)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def read_topic_to_end(
    bootstrap: str, topic: str, *, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` up to its end as of the call (however busy the machine)."""
    consumer: AIOKafkaConsumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        assert partitions, f"topic {topic} has no partitions"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout} s"
            batch = await consumer.getmany(*partitions, timeout_ms=500)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def start_group_at_end(bootstrap: str, group_id: str, topics: list[str] | str) -> None:
    """Commit ``group_id`` at the current end of ``topics``, so a service under test consumes
    only what its test publishes (not the shared broker's whole history)."""
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # no public way to refresh metadata
        partitions = [
            TopicPartition(topic, p)
            for topic in names
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if partitions:
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            await consumer.commit(dict(ends))
    finally:
        await consumer.stop()

"""Helpers shared by integration tests: databases, topics, subprocesses, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import migrate
from shared.events.catalog import CATALOG, Topic
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdErased
from shared.kafka import ensure_topics

ROOT = Path(__file__).resolve().parents[1]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def migrated_database(infra: Any, service: str, name: str | None = None) -> str:
    """A fresh database of the service's schema; returns its URL."""
    url: str = infra.postgres_url(name or unique(f"t_{service}"))
    await migrate(url, ROOT / "services" / service / "migrations")
    return url


async def create_catalog_topics(bootstrap: str) -> None:
    await ensure_topics(bootstrap, CATALOG)


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


def throwaway_topic(
    prefix: str,
    events: tuple[type[Any], ...],
    *,
    partitions: int = 1,
    consumer: str = "distribution",
) -> Topic:
    """A throw-away topic of these household events for a consumer test."""
    return Topic(
        name=unique(prefix),
        description="test",
        key="household_id",
        partitions=partitions,
        producers=("registration",),
        consumers=(consumer,),
        events=events,
    )


def erasures_topic(prefix: str, *, partitions: int = 1, consumer: str = "distribution") -> Topic:
    """A throw-away topic of HouseholdErased events for a consumer test."""
    return throwaway_topic(prefix, (HouseholdErased,), partitions=partitions, consumer=consumer)


def consumer_record(
    envelope: Envelope[Any] | None,
    *,
    topic: str,
    key: str,
    offset: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    """The Kafka record a consumer would receive for ``envelope`` (None: a tombstone)."""
    value = envelope.kafka_value() if envelope is not None else None
    raw_key = key.encode()
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=raw_key,
        value=value,
        checksum=None,
        serialized_key_size=len(raw_key),
        serialized_value_size=len(value) if value is not None else -1,
        headers=envelope.kafka_headers() if envelope is not None else [],
    )


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [partition["partition"] for partition in description["partitions"]]


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


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "",
) -> None:
    """Wait until ``check`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check.__name__}")


def start_python(
    module: str, *args: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run ``python -m module args`` in its own process group, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


async def start_group_at_end(bootstrap: str, group_id: str, topics: list[str]) -> None:
    """Commit ``group_id`` at the current end of ``topics``, so a service under test consumes
    only what its test publishes (not the shared broker's whole history)."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # no public way to refresh metadata
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if partitions:
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


@contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)

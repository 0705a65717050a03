"""The lag gauge comes from the broker too: a consumer that handles nothing still shows its lag
growing (partition ends minus the group's committed offsets)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from shared.consumer import LagWatcher
from tests.support import unique


async def _topic_with_records(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    await _produce(bootstrap, topic, per_partition)


async def _produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, count in per_partition.items():
            for n in range(count):
                await producer.send_and_wait(topic, f"{n}".encode(), partition=partition)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_lag_is_measured_from_committed_offsets_and_grows_while_nothing_is_handled(
    infra: Any,
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic, group, service = unique("lag"), unique("lag-group"), unique("lagsvc")
    await _topic_with_records(bootstrap, topic, {0: 7, 1: 3})
    await _commit(bootstrap, group, {TopicPartition(topic, 0): 5})  # partition 1 never committed

    watcher = LagWatcher(bootstrap, service=service, group_id=group, topics=[topic])
    try:
        assert await watcher.measure() == {(topic, 0): 2, (topic, 1): 3}

        await _produce(bootstrap, topic, {0: 4})
        assert await watcher.measure() == {(topic, 0): 6, (topic, 1): 3}

        await _commit(bootstrap, group, {TopicPartition(topic, 0): 11, TopicPartition(topic, 1): 3})
        assert await watcher.measure() == {(topic, 0): 0, (topic, 1): 0}
    finally:
        await watcher.close()


async def test_the_running_watcher_sets_the_gauge(infra: Any) -> None:
    bootstrap = infra.kafka_bootstrap
    topic, group, service = unique("lag"), unique("lag-group"), unique("lagsvc")
    await _topic_with_records(bootstrap, topic, {0: 4, 1: 0})
    stop = asyncio.Event()
    watcher = LagWatcher(bootstrap, service=service, group_id=group, topics=[topic])
    task = asyncio.create_task(watcher.run(stop, interval_seconds=0.1))

    def gauge() -> float | None:
        labels = {"service": service, "topic": topic, "partition": "0"}
        return REGISTRY.get_sample_value("haven_consumer_lag", labels)

    try:
        for _ in range(100):
            if gauge() == 4:
                break
            await asyncio.sleep(0.1)
        assert gauge() == 4
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)

"""The consuming side of one service: its configuration and its one FastStream subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord
from faststream import AckPolicy, ContextRepo
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from prometheus_client import Counter

from shared.consumer.batch import BATCH_LINGER_MS, BATCH_SIZE, BATCH_WAIT_MS, Batches
from shared.consumer.lag import record_lag
from shared.consumer.registry import TombstoneHandler, _Handler
from shared.consumer.retries import RetryPolicy
from shared.db import SessionFactory
from shared.events.catalog import CATALOG, Catalog, Topic
from shared.kafka import LazyProducer


class EventConsumer(Batches):
    """The consuming side of one service: handlers by event type, over FastStream
    (docs/architecture.md, "The consumer")."""

    def __init__(
        self,
        *,
        service: str,
        sessions: SessionFactory,
        dead_letters: LazyProducer,
        retry: RetryPolicy | None = None,
        catalog: Catalog = CATALOG,
        group_id: str | None = None,
        batch_size: int = BATCH_SIZE,
        batch_wait_ms: int = BATCH_WAIT_MS,
        batch_linger_ms: int = BATCH_LINGER_MS,
    ) -> None:
        self.service = service
        self.group_id = group_id or f"haven-{service}"
        self.sessions = sessions
        self.dead_letters = dead_letters
        self.retry = retry or RetryPolicy()
        self.catalog = catalog
        self.batch_size = batch_size
        self.batch_wait_ms = batch_wait_ms
        self.batch_linger_ms = batch_linger_ms
        # One batch transaction at a time in this process. The single subscriber already runs
        # batches one after another; this keeps concurrent callers of process_batch from
        # taking the same households' locks in different orders (deadlocks).
        self._batch_lock = asyncio.Lock()
        self._handlers: dict[str, _Handler] = {}
        self._tombstones: dict[str, TombstoneHandler] = {}
        self._topic_names: set[str] = set()
        self._consumed: dict[tuple[str, str], Counter] = {}

    def subscribe(self, broker: KafkaBroker) -> None:
        """One batch subscriber for all of this service's topics, committing by hand.

        One subscriber is one Kafka consumer: the group is joined once when the service
        starts. A subscriber per topic joined one after another, and every join rebalanced
        the group (about 3 s each), so events waited for the first ~10 s of a service's life.
        """
        topics = self.topics()
        if not topics:
            return
        subscriber = broker.subscriber(
            *(topic.name for topic in topics),
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=self.batch_wait_ms,
            title=f"{self.service}:events",
            # Keep the raw bytes: decoding is ours, so an undecodable record reaches
            # the dead-letter topic instead of failing inside FastStream.
            decoder=_raw_body,
        )
        subscriber(self._make_handler({topic.name: topic for topic in topics}, broker.context))

    def _make_handler(
        self, topics: dict[str, Topic], context: ContextRepo
    ) -> Callable[[], Awaitable[None]]:
        # The message is read from FastStream's context rather than injected as a
        # ``KafkaMessage`` parameter: an injected context field is resolved in a worker thread
        # (and a task group) for every batch, a large share of a quiet consumer's CPU.
        async def handle() -> None:
            msg: KafkaMessage = context.get_local("message")
            records = await self._gathered(msg)
            # A partition belongs to one topic, so handling topic by topic keeps each
            # partition's records in order.
            by_topic: dict[str, list[ConsumerRecord[bytes, bytes]]] = {}
            for record in records:
                by_topic.setdefault(record.topic, []).append(record)
            for name, of_topic in by_topic.items():
                await self.process_batch(topics[name], of_topic)
            await self.purge_erased_dead_letters(records)
            await msg.ack()  # commits the consumer's positions: past every record handled
            record_lag(self.service, msg, records)

        handle.__name__ = f"consume_{self.service}_events"
        return handle


async def _raw_body(msg: StreamMessage[Any]) -> bytes:
    return msg.body

"""Consuming events exactly once in effect: inbox, bounded retries, dead letters.

A service registers one handler per event type; :class:`EventConsumer` subscribes to each
catalog topic with FastStream (manual acknowledgement, one subscriber per topic so order per
partition holds) and for every record:

1. decodes the CloudEvents envelope and payload — a record that cannot be decoded goes to
   ``<topic>.dlq`` at once;
2. runs the handler and records the event id in the inbox in one database transaction — a
   redelivered event is skipped;
3. retries a failing handler with exponential backoff and jitter; after ``max_attempts`` the
   record goes to the dead-letter topic with the error, the attempt count and its original
   headers, and the partition moves on. Infrastructure outages (database or network down) are
   retried without limit and never dead-lettered: the record waits until they end;
4. commits the offset only after the effect (or the dead letter) is durable.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import inbox
from shared.db import SessionFactory
from shared.events.catalog import CATALOG, Catalog, Topic
from shared.events.envelope import Envelope, MalformedEvent, decode_envelope, headers_to_dict
from shared.kafka import LazyProducer
from shared.telemetry import correlation_id_var, extract_trace_context

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncSession, Envelope[Any]], Awaitable[None]]
TombstoneHandler = Callable[[AsyncSession, str], Awaitable[None]]

CONSUMED = Counter(
    "haven_events_consumed_total",
    "Events handled by a consumer, by outcome",
    ["service", "topic", "outcome"],
)
DEAD_LETTERED = Counter(
    "haven_events_dead_lettered_total", "Records sent to a dead-letter topic", ["service", "topic"]
)

LAG = Gauge(
    "haven_consumer_lag",
    "Records behind the end of the partition after the last one handled",
    ["service", "topic", "partition"],
)

DLQ_HEADER_PREFIX = "haven_dlq_"
tracer = trace.get_tracer("haven.consumer")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the given (1-based) attempt."""
        ceiling = min(self.max_backoff_seconds, self.initial_backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def is_transient(exc: BaseException) -> bool:
    """Outages that say nothing about the event: retried without limit, never dead-lettered."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    transient = (
        OSError,
        ConnectionError,
        TimeoutError,
        KafkaConnectionError,
        KafkaTimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.SerializationError,
        asyncpg.DeadlockDetectedError,
    )
    cause = exc.__cause__ or getattr(exc, "orig", None)
    return isinstance(exc, transient) or (cause is not None and isinstance(cause, transient))


class EventConsumer:
    """The consuming side of one service: handlers by event type, over FastStream."""

    def __init__(
        self,
        *,
        service: str,
        sessions: SessionFactory,
        dead_letters: LazyProducer,
        retry: RetryPolicy | None = None,
        catalog: Catalog = CATALOG,
        group_id: str | None = None,
    ) -> None:
        self.service = service
        self.group_id = group_id or f"haven-{service}"
        self.sessions = sessions
        self.dead_letters = dead_letters
        self.retry = retry or RetryPolicy()
        self.catalog = catalog
        self._handlers: dict[str, EventHandler] = {}
        self._tombstones: dict[str, TombstoneHandler] = {}
        self._topic_names: set[str] = set()

    def on(self, *event_types: type[Any]) -> Callable[[EventHandler], EventHandler]:
        """Register the handler of one or more event payload types."""

        def register(handler: EventHandler) -> EventHandler:
            for event_type in event_types:
                # topic_for fails fast on an event type that is not in the catalog
                self._topic_names.add(self.catalog.topic_for(event_type).name)
                self._handlers[event_type.event_type] = handler
            return handler

        return register

    def on_tombstone(self, topic: Topic) -> Callable[[TombstoneHandler], TombstoneHandler]:
        """Register the handler of a compacted topic's tombstones (null value, by key)."""

        def register(handler: TombstoneHandler) -> TombstoneHandler:
            self._tombstones[topic.name] = handler
            self._topic_names.add(topic.name)
            return handler

        return register

    def topics(self) -> list[Topic]:
        """The topics this consumer subscribes to, in catalog order."""
        return [t for t in self.catalog.topics if t.name in self._topic_names]

    def subscribe(self, broker: KafkaBroker) -> None:
        """One subscriber per topic (keeps order per partition), committing only by hand."""
        for topic in self.topics():
            subscriber = broker.subscriber(
                topic.name,
                group_id=self.group_id,
                ack_policy=AckPolicy.MANUAL,
                auto_offset_reset="earliest",
                max_poll_records=100,
                title=f"{self.service}:{topic.name}",
                # Keep the raw bytes: decoding is ours, so an undecodable record reaches
                # the dead-letter topic instead of failing inside FastStream.
                decoder=_raw_body,
            )
            subscriber(self._make_handler(topic))

    def _make_handler(self, topic: Topic) -> Callable[[KafkaMessage], Awaitable[None]]:
        async def handle(msg: KafkaMessage) -> None:
            await self.process(topic, msg.raw_message)
            await msg.ack()

        handle.__name__ = f"consume_{topic.name.replace('.', '_')}"
        return handle

    def _record_lag(self, record: Any) -> None:
        consumer = getattr(record, "consumer", None)  # FastStream's KafkaRawMessage has it
        if consumer is None:
            return
        partition = TopicPartition(record.topic, record.partition)
        end = consumer.highwater(partition)
        if end is not None:
            lag = max(0, end - record.offset - 1)
            LAG.labels(self.service, record.topic, str(record.partition)).set(lag)

    async def process(self, topic: Topic, record: ConsumerRecord[bytes, bytes]) -> str:
        """Handle one record until it is applied, skipped or dead-lettered; return the outcome.

        The work runs in a consumer span that continues the producer's trace (the W3C
        ``traceparent`` written into the outbox row by the request that caused the event).
        """
        headers = headers_to_dict(record.headers or ())
        token = correlation_id_var.set(headers.get("ce_correlationid"))
        try:
            with tracer.start_as_current_span(
                f"{topic.name} process",
                context=extract_trace_context(headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic.name,
                    "messaging.kafka.destination.partition": record.partition,
                    "messaging.kafka.message.offset": record.offset,
                    "messaging.consumer.group.name": self.group_id,
                    "haven.event_type": headers.get("ce_type", ""),
                },
            ) as span:
                outcome = await self._process(topic, record, headers)
                span.set_attribute("haven.outcome", outcome)
        finally:
            correlation_id_var.reset(token)
        CONSUMED.labels(self.service, topic.name, outcome).inc()
        return outcome

    async def _process(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
    ) -> str:
        if record.value is None:
            return await self._tombstone(topic, record)
        event_type = headers.get("ce_type", "")
        handler = self._handlers.get(event_type)
        model = self.catalog.payload_model(event_type)
        if model is None:
            await self._dead_letter(topic, record, f"unknown event type {event_type!r}", 0)
            return "dead_lettered"
        if handler is None:
            return "ignored"  # a catalogued event this service has no use for
        try:
            envelope = decode_envelope(headers, record.value, model)
        except MalformedEvent as exc:
            await self._dead_letter(topic, record, f"malformed event: {exc}", 0)
            return "dead_lettered"

        async def apply(session: AsyncSession) -> bool:
            if not await inbox.claim(
                session, consumer=self.service, event_id=envelope.id, topic=topic.name
            ):
                return False
            await handler(session, envelope)
            return True

        return await self._with_retries(topic, record, apply, "applied", "duplicate")

    async def _tombstone(self, topic: Topic, record: ConsumerRecord[bytes, bytes]) -> str:
        handler = self._tombstones.get(topic.name)
        if handler is None or record.key is None:
            return "ignored"
        key = record.key.decode(errors="replace")

        async def apply(session: AsyncSession) -> bool:
            await handler(session, key)  # deletions are idempotent by nature
            return True

        return await self._with_retries(topic, record, apply, "tombstone", "tombstone")

    async def _with_retries(
        self,
        topic: Topic,
        record: ConsumerRecord[bytes, bytes],
        apply: Callable[[AsyncSession], Awaitable[bool]],
        applied: str,
        skipped: str,
    ) -> str:
        failures = 0
        outages = 0
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    done = await apply(session)
                return applied if done else skipped
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    outages += 1
                    log.warning(
                        "consumer waiting for infrastructure",
                        extra={"topic": topic.name, "error": type(exc).__name__},
                    )
                    await asyncio.sleep(self.retry.backoff(min(outages, 8)))
                    continue
                failures += 1
                log.warning(
                    "event handler failed",
                    extra={"topic": topic.name, "attempt": failures, "error": type(exc).__name__},
                    exc_info=failures >= self.retry.max_attempts,
                )
                if failures >= self.retry.max_attempts:
                    await self._dead_letter(topic, record, _describe(exc), failures)
                    return "dead_lettered"
                await asyncio.sleep(self.retry.backoff(failures))

    async def _dead_letter(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], reason: str, attempts: int
    ) -> None:
        extra = {
            "reason": reason[:2000],
            "attempts": str(attempts),
            "consumer": self.service,
            "original_topic": record.topic,
            "original_partition": str(record.partition),
            "original_offset": str(record.offset),
        }
        headers = list(record.headers or ()) + [
            (DLQ_HEADER_PREFIX + name, value.encode()) for name, value in extra.items()
        ]
        outages = 0
        while True:  # a dead letter must be durable before the offset moves on
            try:
                producer = await self.dead_letters.get()
                await producer.send_and_wait(
                    topic.dlq, value=record.value, key=record.key, headers=headers
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outages += 1
                log.warning("dead-letter publish failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(self.retry.backoff(min(outages, 8)))
        DEAD_LETTERED.labels(self.service, topic.name).inc()
        log.error(
            "event dead-lettered",
            extra={"topic": topic.name, "offset": record.offset, "dlq_reason": reason[:200]},
        )


async def _raw_body(msg: StreamMessage[Any]) -> bytes:
    return msg.body


def _describe(exc: BaseException) -> str:
    """The error's type and message, for the dead-letter header (handlers must not put
    personal values in exception messages)."""
    return f"{type(exc).__name__}: {exc}"

"""Consuming events exactly once in effect: inbox, bounded retries, dead letters.

A service registers one handler per event type; :class:`EventConsumer` subscribes to its
catalog topics with FastStream (manual acknowledgement; one subscriber, so one Kafka consumer
and one group join for all of a service's topics; records of a partition are handled in
order) and for every record:

1. decodes the CloudEvents envelope and payload — a record that cannot be decoded goes to
   ``<topic>.dlq`` at once;
2. runs the handler and records the event id in the inbox in one database transaction — a
   redelivered event is skipped. Records are fetched in batches, and a batch's events share
   one transaction (one inbox insert, one commit); when that transaction fails for any reason
   the batch is rolled back and its events are handled again one by one, each in its own
   transaction, with the retries below;
3. retries a failing handler with exponential backoff and jitter; after ``max_attempts`` the
   record goes to the dead-letter topic with the error, the attempt count and its original
   headers, and the partition moves on. Infrastructure outages (database or network down) are
   retried without limit and never dead-lettered: the record waits until they end;
4. commits the offsets only after the effects (or the dead letters) of the whole batch are
   durable: once per batch, not per record. A crash in between redelivers the batch, and the
   inbox drops what was already applied.

A handler registered with :meth:`EventConsumer.on_batch` is given a batch's consecutive events
of its types together, so it can apply them in a few set-based statements instead of a few
statements per event; it must leave exactly the effects applying them one by one, in order,
would leave (it is also called with a single event, on the one-by-one path). Work it does
for one particular event (its own audit record, events it causes) runs inside
:func:`acting_on`, which gives that work the event's correlation id and trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy, ContextRepo
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from prometheus_client import Counter, Gauge
from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import inbox
from shared.db import SessionFactory
from shared.events.catalog import CATALOG, Catalog, Topic
from shared.events.envelope import Envelope, MalformedEvent, decode_envelope, headers_to_dict
from shared.kafka import LazyProducer, connection_options
from shared.settings import CommonSettings
from shared.telemetry import correlation_id_var, extract_trace_context

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncSession, Envelope[Any]], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[Envelope[Any]]], Awaitable[None]]
TombstoneHandler = Callable[[AsyncSession, str], Awaitable[None]]
T = TypeVar("T")

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
    "Records behind the end of the partition: after each batch handled, and from the group's "
    "committed offsets every few seconds (so a stuck consumer's lag still grows)",
    ["service", "topic", "partition"],
)

DLQ_HEADER_PREFIX = "haven_dlq_"
BATCH_SIZE = 100
"""Most records handled in one transaction (and acknowledged with one offset commit)."""
BATCH_WAIT_MS = 50
"""How long an idle subscriber waits for records before polling again (adds at most this
much latency to the first event after a quiet spell)."""
IGNORED = "ignored"
"""The outcome of a catalogued event this service has no handler for."""
BATCH_LINGER_MS = 20
"""How long a subscriber woken for fewer than ``BATCH_SIZE`` records waits for more before
handling them (0: never). Each batch costs a transaction and an offset commit whatever its
size, so a busy consumer trades this much latency for much less CPU per event."""
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


@dataclass(frozen=True)
class _Handler:
    """A registered handler: of one event at a time, or of consecutive events together."""

    function: EventHandler | BatchHandler
    batched: bool

    async def __call__(self, session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
        if self.batched:
            await self.function(session, envelopes)  # type: ignore[arg-type]
        else:
            for envelope in envelopes:
                await self.function(session, envelope)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Decoded:
    record: ConsumerRecord[bytes, bytes]
    headers: dict[str, str]
    envelope: Envelope[Any]
    handler: _Handler


@dataclass(frozen=True)
class _Delivery:
    """An event handed to a batch handler: its span (in the producer's trace) and its
    correlation id."""

    span: Span
    correlation_id: str | None


_deliveries: ContextVar[dict[UUID, _Delivery] | None] = ContextVar(
    "haven_batch_deliveries", default=None
)


@contextmanager
def acting_on(envelope: Envelope[Any]) -> Iterator[None]:
    """Inside a batch handler: work done for this one event (audit records, the events it
    causes) carries its correlation id and runs in its span of the producer's trace, as it
    would in a handler of one event. Outside a batch only the correlation id is set."""
    delivery = (_deliveries.get() or {}).get(envelope.id)
    correlation_id = delivery.correlation_id if delivery else envelope.correlation_id
    token = correlation_id_var.set(correlation_id)
    try:
        if delivery is None:
            yield
        else:
            with trace.use_span(delivery.span, end_on_exit=False):
                yield
    finally:
        correlation_id_var.reset(token)


def distinct_runs(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """Split ``items`` into consecutive runs in which no key appears twice, in order.

    A set-based statement can touch a row only once (``ON CONFLICT DO UPDATE`` refuses a
    second change to the same row), so a batch with two events of one household is applied
    as two statements, the earlier event first."""
    runs: list[list[T]] = []
    seen: set[Hashable] = set()
    for item in items:
        k = key(item)
        if not runs or k in seen:
            runs.append([])
            seen = set()
        runs[-1].append(item)
        seen.add(k)
    return runs


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

    def on(self, *event_types: type[Any]) -> Callable[[EventHandler], EventHandler]:
        """Register the handler of one or more event payload types, one event at a time."""

        def register(handler: EventHandler) -> EventHandler:
            self._register(event_types, _Handler(handler, batched=False))
            return handler

        return register

    def on_batch(self, *event_types: type[Any]) -> Callable[[BatchHandler], BatchHandler]:
        """Register a handler given consecutive events of these types together (see the
        module docstring for what it must guarantee)."""

        def register(handler: BatchHandler) -> BatchHandler:
            self._register(event_types, _Handler(handler, batched=True))
            return handler

        return register

    def _register(self, event_types: Sequence[type[Any]], handler: _Handler) -> None:
        for event_type in event_types:
            # topic_for fails fast on an event type that is not in the catalog
            self._topic_names.add(self.catalog.topic_for(event_type).name)
            self._handlers[event_type.event_type] = handler

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
            await msg.ack()  # commits the consumer's positions: past every record handled
            self._record_lag(msg, records)

        handle.__name__ = f"consume_{self.service}_events"
        return handle

    async def _gathered(self, msg: KafkaMessage) -> Sequence[ConsumerRecord[bytes, bytes]]:
        """The fetched records plus those that arrive within ``batch_linger_ms``.

        A consumer woken for one or two records pays a transaction (BEGIN, inbox claim,
        COMMIT), an offset commit and FastStream's per-message work for them alone; waiting a
        few milliseconds for the records right behind them shares that cost.
        """
        records: Sequence[ConsumerRecord[bytes, bytes]] = msg.raw_message
        consumer = getattr(msg, "consumer", None)
        if not self.batch_linger_ms or consumer is None or len(records) >= self.batch_size:
            return records
        await asyncio.sleep(self.batch_linger_ms / 1000)
        more = await consumer.getmany(timeout_ms=0, max_records=self.batch_size - len(records))
        if not more:
            return records
        # per partition, the later records follow the earlier ones: order per partition holds
        return [*records, *(record for part in more.values() for record in part)]

    def _record_lag(
        self, msg: KafkaMessage, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Records left behind the last one handled of each partition in the batch."""
        highwater = getattr(getattr(msg, "consumer", None), "highwater", None)
        if highwater is None:
            return
        last = {(r.topic, r.partition): r.offset for r in records}
        for (topic, partition), offset in last.items():
            end = highwater(TopicPartition(topic, partition))
            if end is not None:
                LAG.labels(self.service, topic, str(partition)).set(max(0, end - offset - 1))

    async def process(self, topic: Topic, record: ConsumerRecord[bytes, bytes]) -> str:
        """Handle one record until it is applied, skipped or dead-lettered; return the outcome.

        The work runs in a consumer span that continues the producer's trace (the W3C
        ``traceparent`` written into the outbox row by the request that caused the event).
        """
        headers = headers_to_dict(record.headers or ())
        return await self._process_one(topic, record, headers, None)

    async def _process_one(
        self,
        topic: Topic,
        record: ConsumerRecord[bytes, bytes],
        headers: dict[str, str],
        decoded: _Decoded | None,
    ) -> str:
        """One record in a transaction of its own; ``decoded`` when it already was."""
        with self._event_span(topic, record, headers) as span:
            if decoded is not None:
                outcome = await self._apply_one(topic, decoded)
            else:
                outcome = await self._process_record(topic, record, headers)
            span.set_attribute("haven.outcome", outcome)
        self._count(topic, outcome)
        return outcome

    def _count(self, topic: Topic, outcome: str, amount: int = 1) -> None:
        """Count handled events; the labelled child is looked up once per topic and outcome."""
        key = (topic.name, outcome)
        child = self._consumed.get(key)
        if child is None:
            child = self._consumed[key] = CONSUMED.labels(self.service, topic.name, outcome)
        child.inc(amount)

    @contextmanager
    def _event_span(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
    ) -> Iterator[Span]:
        token = correlation_id_var.set(headers.get("ce_correlationid"))
        try:
            with trace.use_span(self._start_event_span(topic, record, headers), end_on_exit=True):
                yield trace.get_current_span()
        finally:
            correlation_id_var.reset(token)

    def _start_event_span(
        self,
        topic: Topic,
        record: ConsumerRecord[bytes, bytes],
        headers: dict[str, str],
        links: Sequence[Link] = (),
        parent: Context | None = None,
    ) -> Span:
        """The span of handling one event: a child of its producer's span, so the request
        that caused the event and everything it caused downstream are one trace."""
        return tracer.start_span(
            f"{topic.name} process",
            context=parent if parent is not None else extract_trace_context(headers),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic.name,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.consumer.group.name": self.group_id,
                "haven.event_type": headers.get("ce_type", ""),
            },
        )

    async def process_batch(
        self, topic: Topic, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[str]:
        """Handle fetched records in order; return their outcomes.

        Consecutive decodable events with a handler are applied in one transaction; anything
        else (a tombstone, an unknown or malformed record) takes the one-by-one path in its
        place, so order per partition holds. A catalogued event nobody here handles is
        ignored without ending the run: it has no effect to order. Each record's headers and
        envelope are decoded once, whichever path it takes.
        """
        outcomes: list[str] = []
        run: list[_Decoded] = []
        run_slots: list[int] = []  # where each event of the run goes in ``outcomes``

        async def apply_run() -> None:
            for slot, outcome in zip(run_slots, await self._apply_run(topic, run), strict=True):
                outcomes[slot] = outcome
            run.clear()
            run_slots.clear()

        for record in records:
            headers = headers_to_dict(record.headers or ())
            if self._unhandled(record, headers):  # no effect to order: the run goes on
                outcomes.append(await self._process_one(topic, record, headers, None))
                continue
            decoded = self._decode(record, headers)
            if decoded is None:
                await apply_run()
                outcomes.append(await self._process_one(topic, record, headers, None))
            else:
                run_slots.append(len(outcomes))
                outcomes.append("")
                run.append(decoded)
        await apply_run()
        return outcomes

    def _unhandled(self, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]) -> bool:
        """A catalogued event (not a tombstone) that this service has no handler for."""
        event_type = headers.get("ce_type", "")
        return (
            record.value is not None
            and event_type not in self._handlers
            and self.catalog.payload_model(event_type) is not None
        )

    def _decode(
        self, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
    ) -> _Decoded | None:
        """The record as an event this service handles; None for anything else."""
        if record.value is None:
            return None
        event_type = headers.get("ce_type", "")
        handler = self._handlers.get(event_type)
        if handler is None:
            return None
        model = self.catalog.payload_model(event_type)
        if model is None:
            return None
        try:
            envelope = decode_envelope(headers, record.value, model)
        except MalformedEvent:
            return None
        return _Decoded(record, headers, envelope, handler)

    async def _apply_run(self, topic: Topic, run: list[_Decoded]) -> list[str]:
        if len(run) <= 1:
            return [await self._process_one(topic, item.record, item.headers, item) for item in run]
        outcomes: list[str] | None = None
        async with self._batch_lock:
            try:
                outcomes = await self._apply_together(topic, run)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "batch failed; handling its events one by one",
                    extra={"topic": topic.name, "events": len(run), "error": type(exc).__name__},
                )
        if outcomes is None:
            return [await self._process_one(topic, item.record, item.headers, item) for item in run]
        for outcome in set(outcomes):
            self._count(topic, outcome, outcomes.count(outcome))
        return outcomes

    async def _apply_together(self, topic: Topic, run: list[_Decoded]) -> list[str]:
        outcomes: list[str] = []
        async with self.sessions() as session, session.begin():
            fresh = await inbox.claim_many(
                session,
                consumer=self.service,
                event_ids=[item.envelope.id for item in run],
                topic=topic.name,
            )
            applied: list[_Decoded] = []
            for item in run:
                if item.envelope.id not in fresh:
                    outcomes.append("duplicate")
                    continue
                fresh.discard(item.envelope.id)  # the same event twice in one batch
                applied.append(item)
                outcomes.append("applied")
            for group in _same_handler_runs(applied):
                handler = group[0].handler
                if handler.batched:
                    with self._batch_span(topic, group):
                        await handler(session, [item.envelope for item in group])
                else:
                    (item,) = group
                    with self._event_span(topic, item.record, item.headers) as span:
                        await handler(session, [item.envelope])
                        span.set_attribute("haven.outcome", "applied")
                # Each handler call starts from the database, as in a session of its own.
                await session.flush()
                session.expunge_all()
        return outcomes

    @contextmanager
    def _batch_span(self, topic: Topic, group: Sequence[_Decoded]) -> Iterator[None]:
        """One span for the events a batch handler takes together, linked to each event's
        trace, and each event's own span in its producer's trace (linked to the batch's), so
        a request's trace still shows every consumer its events reached. :func:`acting_on`
        makes an event's span current for the work done for it alone."""
        parents = [extract_trace_context(item.headers) for item in group]
        links = [Link(trace.get_current_span(parent).get_span_context()) for parent in parents]
        with tracer.start_as_current_span(
            f"{topic.name} process",
            kind=SpanKind.CONSUMER,
            links=[link for link in links if link.context.is_valid],
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic.name,
                "messaging.batch.message_count": len(group),
                "messaging.consumer.group.name": self.group_id,
            },
        ) as batch:
            to_batch = [Link(batch.get_span_context())]
            deliveries = {
                item.envelope.id: _Delivery(
                    self._start_event_span(topic, item.record, item.headers, to_batch, parent),
                    item.headers.get("ce_correlationid"),
                )
                for item, parent in zip(group, parents, strict=True)
            }
            token = _deliveries.set(deliveries)
            outcome = "failed"
            try:
                yield
                outcome = "applied"
            finally:
                _deliveries.reset(token)
                batch.set_attribute("haven.outcome", outcome)
                for delivery in deliveries.values():
                    delivery.span.set_attribute("haven.outcome", outcome)
                    delivery.span.end()

    async def _apply_one(self, topic: Topic, decoded: _Decoded) -> str:
        envelope, handler = decoded.envelope, decoded.handler

        async def apply(session: AsyncSession) -> bool:
            if not await inbox.claim(
                session, consumer=self.service, event_id=envelope.id, topic=topic.name
            ):
                return False
            await handler(session, [envelope])
            return True

        return await self._with_retries(topic, decoded.record, apply, "applied", "duplicate")

    async def _process_record(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
    ) -> str:
        """Decode and apply one record; dead-letter what cannot be decoded."""
        if record.value is None:
            return await self._tombstone(topic, record)
        event_type = headers.get("ce_type", "")
        model = self.catalog.payload_model(event_type)
        if model is None:
            await self._dead_letter(topic, record, f"unknown event type {event_type!r}", 0)
            return "dead_lettered"
        handler = self._handlers.get(event_type)
        if handler is None:
            return IGNORED  # a catalogued event this service has no use for
        try:
            envelope = decode_envelope(headers, record.value, model)
        except MalformedEvent as exc:
            await self._dead_letter(topic, record, f"malformed event: {exc}", 0)
            return "dead_lettered"
        return await self._apply_one(topic, _Decoded(record, headers, envelope, handler))

    async def _tombstone(self, topic: Topic, record: ConsumerRecord[bytes, bytes]) -> str:
        handler = self._tombstones.get(topic.name)
        if handler is None or record.key is None:
            return IGNORED
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


def _same_handler_runs(items: Sequence[_Decoded]) -> list[list[_Decoded]]:
    """Consecutive events of one batch handler together; every other event alone."""
    groups: list[list[_Decoded]] = []
    for item in items:
        previous = groups[-1][0].handler if groups else None
        if item.handler.batched and previous is item.handler:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


async def _raw_body(msg: StreamMessage[Any]) -> bytes:
    return msg.body


def _describe(exc: BaseException) -> str:
    """The error's type and message, for the dead-letter header (handlers must not put
    personal values in exception messages)."""
    return f"{type(exc).__name__}: {exc}"


class LagWatcher:
    """Measures a consumer group's lag from the broker: partition ends minus committed offsets.

    The consumer sets the lag after each batch it handles; this watcher also sets it when the
    consumer handles nothing (stuck on an outage, or never started), so the lag still grows
    and "consumer lag growing" can fire.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        service: str,
        group_id: str,
        topics: Sequence[str],
        settings: CommonSettings | None = None,
    ) -> None:
        self.service = service
        self.group_id = group_id
        self.topics = list(topics)
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": f"haven-{service}-lag",
            **connection_options(settings),
        }
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def _connected(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._clients is None:
            admin = AIOKafkaAdminClient(**self._options)
            # No group id: it only reads partition ends, it never joins the service's group.
            ends = AIOKafkaConsumer(**self._options)
            try:
                await admin.start()
                await ends.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await ends.stop()
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._clients = (admin, ends)
        return self._clients

    async def measure(self) -> dict[tuple[str, int], int]:
        """Lag per (topic, partition); a partition the group never committed counts from the
        earliest record still kept (the consumers start there)."""
        admin, ends_client = await self._connected()
        partitions = [
            TopicPartition(described["topic"], partition["partition"])
            for described in await admin.describe_topics(self.topics)
            if described["error_code"] == 0
            for partition in described["partitions"]
        ]
        if not partitions:
            return {}
        committed = await admin.list_consumer_group_offsets(self.group_id)
        ends = await ends_client.end_offsets(partitions)
        unstarted = [tp for tp in partitions if (c := committed.get(tp)) is None or c.offset < 0]
        starts = await ends_client.beginning_offsets(unstarted) if unstarted else {}
        lag: dict[tuple[str, int], int] = {}
        for tp in partitions:
            done = committed.get(tp)
            position = done.offset if done is not None and done.offset >= 0 else starts[tp]
            lag[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
        return lag

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Refresh the lag gauge until ``stop`` is set; Kafka being away only skips a round."""
        try:
            while not stop.is_set():
                try:
                    for (topic, partition), behind in (await self.measure()).items():
                        LAG.labels(self.service, topic, str(partition)).set(behind)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not measure consumer lag", extra={"error": repr(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._clients is not None:
            admin, ends = self._clients
            self._clients = None
            with contextlib.suppress(Exception):
                await ends.stop()
            with contextlib.suppress(Exception):
                await admin.close()

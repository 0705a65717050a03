"""One record at a time: bounded retries with backoff, outages waited out, dead letters."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import inbox
from shared.consumer.registry import IGNORED, HandlerRegistry, _Decoded, misrouted
from shared.consumer.tracing import ConsumerTracing
from shared.db import SessionFactory
from shared.events.catalog import Topic
from shared.events.envelope import MalformedEvent, decode_envelope, headers_to_dict
from shared.events.registration import HouseholdErased
from shared.kafka import LazyProducer
from shared.telemetry import scrubbed

ERASED_TYPE = HouseholdErased.event_type.encode()  # its ce_type header, as sent

# One logger for the whole package, named as before it was split into modules.
log = logging.getLogger("shared.consumer")

DEAD_LETTERED = Counter(
    "haven_events_dead_lettered_total", "Records sent to a dead-letter topic", ["service", "topic"]
)
DLQ_HEADER_PREFIX = "haven_dlq_"


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


def _describe(exc: BaseException) -> str:
    """The error for the dead-letter header, without the data it carries (a database
    error's text holds the statement's parameters)."""
    return scrubbed(exc)


class OneByOne(HandlerRegistry, ConsumerTracing):
    """Handling one record in a transaction of its own, until it is applied, skipped or
    dead-lettered."""

    sessions: SessionFactory
    dead_letters: LazyProducer
    retry: RetryPolicy

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
        if model not in topic.events:
            reason = f"event type {event_type[:100]!r} does not belong to topic {topic.name}"
            await self._dead_letter(topic, record, reason, 0)
            return "dead_lettered"
        handler = self._handlers.get(event_type)
        if handler is None:
            return IGNORED  # a catalogued event this service has no use for
        try:
            envelope = decode_envelope(headers, record.value, model)
        except MalformedEvent as exc:
            await self._dead_letter(topic, record, f"malformed event: {exc}", 0)
            return "dead_lettered"
        wrong = misrouted(topic, model, envelope)
        if wrong is not None:
            await self._dead_letter(topic, record, wrong, 0)
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

    async def purge_erased_dead_letters(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """A household erased: tombstones for its key on the erasable dead-letter topics this
        service consumes, so compaction removes what failed about it (within a day, see
        ``ERASURE_BOUND``); their short retention bounds it anyway."""
        dlqs = [topic.dlq for topic in self.topics() if topic.erasable_dead_letters]
        if not dlqs:  # most batches of most services: nothing to look for
            return
        keys = {
            record.key
            for record in records
            if record.key is not None
            and record.value is not None
            and any(name == "ce_type" and value == ERASED_TYPE for name, value in record.headers)
        }
        for key in sorted(keys):
            for dlq in dlqs:
                await self._send_durably(dlq, value=None, key=key, headers=[])

    async def _send_durably(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        """Send and wait, trying again until Kafka takes it (before the offset moves on)."""
        outages = 0
        while True:
            try:
                producer = await self.dead_letters.get()
                await producer.send_and_wait(topic, value=value, key=key, headers=headers)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outages += 1
                log.warning("dead-letter publish failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(self.retry.backoff(min(outages, 8)))

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
        # A dead letter must be durable before the offset moves on.
        await self._send_durably(topic.dlq, value=record.value, key=record.key, headers=headers)
        DEAD_LETTERED.labels(self.service, topic.name).inc()
        log.error(
            "event dead-lettered",
            extra={"topic": topic.name, "offset": record.offset, "dlq_reason": reason[:200]},
        )

"""A consumer's handlers by event type and tombstone handlers by topic, and what they decode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.events.catalog import Catalog, Topic
from shared.events.envelope import Envelope, MalformedEvent, decode_envelope

EventHandler = Callable[[AsyncSession, Envelope[Any]], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[Envelope[Any]]], Awaitable[None]]
TombstoneHandler = Callable[[AsyncSession, str], Awaitable[None]]

CONSUMED = Counter(
    "haven_events_consumed_total",
    "Events handled by a consumer, by outcome",
    ["service", "topic", "outcome"],
)
IGNORED = "ignored"
"""The outcome of a catalogued event this service has no handler for."""


def misrouted(topic: Topic, model: type[Any], envelope: Envelope[Any]) -> str | None:
    """Why an event must not be applied from this topic: its type is not one the catalog
    puts on it, or its source is not a producer of it (a forged record on one topic must
    not act as another's event, e.g. redirect a household's messages). None when it fits."""
    if model not in topic.events:
        return f"event type {model.__name__} does not belong to topic {topic.name}"
    if envelope.source not in topic.producer_sources:
        return f"source {envelope.source[:100]!r} does not produce topic {topic.name}"
    return None


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


class HandlerRegistry:
    """The handlers a service registers, the topics they make it subscribe to, and the
    decoding of a record into the event one of them handles."""

    service: str
    catalog: Catalog
    _handlers: dict[str, _Handler]
    _tombstones: dict[str, TombstoneHandler]
    _topic_names: set[str]
    _consumed: dict[tuple[str, str], Counter]

    def on(self, *event_types: type[Any]) -> Callable[[EventHandler], EventHandler]:
        """Register the handler of one or more event payload types, one event at a time."""

        def register(handler: EventHandler) -> EventHandler:
            self._register(event_types, _Handler(handler, batched=False))
            return handler

        return register

    def on_batch(self, *event_types: type[Any]) -> Callable[[BatchHandler], BatchHandler]:
        """Register a handler given consecutive events of these types together (see
        docs/architecture.md, "The consumer", for what it must guarantee)."""

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

    def _unhandled(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
    ) -> bool:
        """A catalogued event (not a tombstone) that this service has no handler for."""
        event_type = headers.get("ce_type", "")
        model = self.catalog.payload_model(event_type)
        return (
            record.value is not None
            and event_type not in self._handlers
            and model is not None
            and model in topic.events
        )

    def _decode(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
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
        if misrouted(topic, model, envelope) is not None:
            return None  # handled one by one, which dead-letters it with the reason
        return _Decoded(record, headers, envelope, handler)

    def _count(self, topic: Topic, outcome: str, amount: int = 1) -> None:
        """Count handled events; the labelled child is looked up once per topic and outcome."""
        key = (topic.name, outcome)
        child = self._consumed.get(key)
        if child is None:
            child = self._consumed[key] = CONSUMED.labels(self.service, topic.name, outcome)
        child.inc(amount)

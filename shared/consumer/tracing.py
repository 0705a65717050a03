"""A consumed event's span in its producer's trace, and a batch's span linked to its events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from shared.consumer.registry import _Decoded
from shared.events.catalog import Topic
from shared.events.envelope import Envelope
from shared.telemetry import correlation_id_var, extract_trace_context

tracer = trace.get_tracer("haven.consumer")


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


class ConsumerTracing:
    """The spans of a consumer's work, named and attributed as OpenTelemetry's messaging
    conventions say."""

    group_id: str

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

"""Kafka handlers of the registration service: decode, call the domain, idempotently."""

from shared.consumer import EventConsumer


def register(consumer: EventConsumer) -> None:
    """Registration consumes no events: it is the source of households, not a reader."""

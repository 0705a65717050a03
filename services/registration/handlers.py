"""Kafka handlers of the registration service: decode, call the domain, idempotently."""

from shared.consumer import EventConsumer


def register(consumer: EventConsumer) -> None:
    """Register this service's event handlers (none yet)."""

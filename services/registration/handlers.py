"""Kafka handlers of the registration service: decode, call the domain, idempotently."""

from __future__ import annotations

from services.registration.settings import RegistrationSettings
from shared.consumer import EventConsumer
from shared.service import ServiceRuntime


def register(consumer: EventConsumer, runtime: ServiceRuntime[RegistrationSettings]) -> None:
    """Registration consumes no events: it is the source of households, not a reader."""

"""The notifications service: what it is made of."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

from fastapi import FastAPI

from services.notifications import api, handlers
from services.notifications.channels.base import ChannelTransport
from services.notifications.channels.registry import build_transports
from services.notifications.domain.schedule import Clock, system_clock
from services.notifications.sender import Sender
from services.notifications.settings import Channel, NotificationsSettings
from shared.consumer import EventConsumer
from shared.service import ServiceDefinition, ServiceRuntime, build_app
from shared.settings import load_settings

NAME = "notifications"

log = logging.getLogger(__name__)


def build_definition(
    settings: NotificationsSettings | None = None,
    *,
    clock: Clock = system_clock,
    transports: dict[Channel, ChannelTransport] | None = None,
    rng: random.Random | None = None,
    name: str = NAME,
) -> ServiceDefinition[NotificationsSettings]:
    """The service with its handlers and sender loop. Without ``settings`` they are read from
    the environment (``HAVEN_NOTIFICATIONS_*``) when the runtime starts; tests pass their own
    settings, clock, transports and a distinct ``name`` (its consumer group)."""

    def resolved(
        runtime: ServiceRuntime[NotificationsSettings] | None = None,
    ) -> NotificationsSettings:
        if settings is not None:
            return settings
        if runtime is not None and isinstance(runtime.settings, NotificationsSettings):
            return runtime.settings
        return load_settings(NAME, NotificationsSettings)

    def register(consumer: EventConsumer, runtime: ServiceRuntime[NotificationsSettings]) -> None:
        handlers.register(consumer, settings=resolved(), clock=clock)

    async def send_notifications(
        runtime: ServiceRuntime[NotificationsSettings], stop: asyncio.Event
    ) -> None:
        own = resolved(runtime)
        for warning in own.production_warnings():
            log.error("notifications misconfigured for production", extra={"problem": warning})
        if not own.sender_enabled:
            return
        sender = Sender(
            engine=runtime.engine,
            sessions=runtime.sessions,
            settings=own,
            transports=transports or build_transports(own, clock=clock),
            clock=clock,
            rng=rng,
        )
        await sender.run(stop)

    return ServiceDefinition(
        name=name,
        title="Haven notifications",
        settings_class=NotificationsSettings,
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router],
        handlers=register,
        jobs=[send_notifications],
    )


DEFINITION = build_definition()


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_NOTIFICATIONS_*``) unless given."""
    settings = settings or load_settings(NAME, NotificationsSettings)
    return build_app(build_definition(settings), settings)

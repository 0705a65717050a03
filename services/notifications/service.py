"""The notifications service: what it is made of."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notifications import api, handlers
from services.notifications.jobs import send_notifications
from services.notifications.settings import NotificationsSettings
from shared.clock import Clock, system_clock
from shared.service import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="notifications",
    title="Haven notifications",
    settings_class=NotificationsSettings,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    handlers=handlers.register,
    jobs=[send_notifications],
)


def create_app(
    settings: NotificationsSettings | None = None, *, clock: Clock = system_clock
) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_NOTIFICATIONS_*``) unless given."""
    return build_app(DEFINITION, settings, clock=clock)

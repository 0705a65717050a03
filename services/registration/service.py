"""The registration service: what it is made of (wiring only)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.registration import api, handlers
from services.registration.jobs import JOBS
from services.registration.settings import RegistrationSettings
from shared.clock import Clock, system_clock
from shared.service import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="registration",
    title="Haven registration",
    settings_class=RegistrationSettings,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    handlers=handlers.register,
    jobs=JOBS,
)


def create_app(
    settings: RegistrationSettings | None = None, *, clock: Clock = system_clock
) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_REGISTRATION_*``) unless given."""
    return build_app(DEFINITION, settings, clock=clock)

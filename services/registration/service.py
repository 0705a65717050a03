"""The registration service: what it is made of."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from services.registration import api, handlers
from services.registration.domain import idempotency
from services.registration.domain import metrics as registration_metrics
from services.registration.settings import RegistrationSettings
from shared import metrics
from shared.jobs import periodic
from shared.service import ServiceDefinition, ServiceRuntime, build_app

log = logging.getLogger(__name__)


async def purge_idempotency_records(runtime: ServiceRuntime[RegistrationSettings]) -> None:
    """Delete expired Idempotency-Key records."""
    async with runtime.sessions() as session, session.begin():
        purged = await idempotency.purge_expired(session=session, now=runtime.clock())
    if purged:
        log.info("purged expired idempotency records", extra={"count": purged})


DEFINITION = ServiceDefinition(
    name="registration",
    title="Haven registration",
    settings_class=RegistrationSettings,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    handlers=lambda consumer, runtime: handlers.register(consumer),
    jobs=[
        periodic(
            lambda settings: settings.idempotency_purge_seconds,
            purge_idempotency_records,
            name="idempotency-purge",
        ),
        metrics.refresh_job(*registration_metrics.GAUGES),
    ],
)


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_REGISTRATION_*``) unless given."""
    return build_app(DEFINITION, settings)

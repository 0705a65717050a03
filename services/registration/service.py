"""The registration service: what it is made of."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI

from services.registration import api, handlers
from services.registration.domain import idempotency
from services.registration.domain import metrics as registration_metrics
from services.registration.domain.ages import system_clock
from services.registration.settings import RegistrationSettings
from shared import metrics
from shared.service import ServiceDefinition, ServiceRuntime, build_app
from shared.settings import load_settings

log = logging.getLogger(__name__)


async def purge_idempotency_records(runtime: ServiceRuntime, stop: asyncio.Event) -> None:
    """Delete expired Idempotency-Key records now and then until the service stops."""
    settings = runtime.settings
    interval = (
        settings.idempotency_purge_seconds
        if isinstance(settings, RegistrationSettings)
        else RegistrationSettings().idempotency_purge_seconds
    )
    while not stop.is_set():
        try:
            async with runtime.sessions() as session, session.begin():
                purged = await idempotency.purge_expired(session=session, now=system_clock())
            if purged:
                log.info("purged expired idempotency records", extra={"count": purged})
        except Exception as exc:  # the database may be away; try again next round
            log.warning("idempotency purge failed", extra={"error": repr(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


DEFINITION = ServiceDefinition(
    name="registration",
    title="Haven registration",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    register_handlers=handlers.register,
    background=[purge_idempotency_records, metrics.refresh_job(*registration_metrics.GAUGES)],
)


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_REGISTRATION_*``) unless given."""
    return build_app(DEFINITION, settings or load_settings("registration", RegistrationSettings))

"""Background work of the registration service: the periodic purge of expired keys."""

from __future__ import annotations

import logging

from services.registration.domain import idempotency
from services.registration.domain import metrics as registration_metrics
from services.registration.settings import RegistrationSettings
from shared import metrics
from shared.jobs import periodic
from shared.service import ServiceRuntime

log = logging.getLogger(__name__)


async def purge_idempotency_records(runtime: ServiceRuntime[RegistrationSettings]) -> None:
    """Delete expired Idempotency-Key records (one round)."""
    async with runtime.sessions() as session, session.begin():
        purged = await idempotency.purge_expired(session=session, now=runtime.clock())
    if purged:
        log.info("purged expired idempotency records", extra={"count": purged})


JOBS = (
    periodic(
        lambda settings: settings.idempotency_purge_seconds,
        purge_idempotency_records,
        name="idempotency-purge",
    ),
    metrics.refresh_job(*registration_metrics.GAUGES),
)

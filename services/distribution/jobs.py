"""Background work of the distribution service: the daily expiry write-off and the gauges."""

from __future__ import annotations

import logging

from services.distribution.domain import expiry
from services.distribution.domain import metrics as distribution_metrics
from services.distribution.settings import DistributionSettings
from shared import metrics
from shared.clock import local_date
from shared.jobs import BackgroundJob, periodic
from shared.service import ServiceRuntime

log = logging.getLogger(__name__)


async def write_off_expired_stock(
    runtime: ServiceRuntime[DistributionSettings],
) -> expiry.ExpiryRunResult | None:
    """One round: write off what expired by today (local date); the day's ``expiry_run`` row
    makes a second round, a restart or a second replica a no-op (None)."""
    settings = runtime.settings
    now = runtime.clock()
    async with runtime.sessions() as session, session.begin():
        result = await expiry.write_off_expired(
            session=session,
            today=local_date(now, settings.timezone),
            now=now,
            window_days=settings.days_of_cover_window_days,
        )
    if result is not None:
        log.info(
            "expired stock written off",
            extra={
                "run_on": result.run_on.isoformat(),
                "batches": result.batches_written_off,
                "quantity": result.quantity_written_off,
            },
        )
    return result


EXPIRY_WRITE_OFF = periodic(
    lambda settings: settings.expiry_check_seconds,
    write_off_expired_stock,
    name="expiry-write-off",
)

JOBS: tuple[BackgroundJob, ...] = (
    EXPIRY_WRITE_OFF,
    metrics.refresh_job(*distribution_metrics.GAUGES),
)

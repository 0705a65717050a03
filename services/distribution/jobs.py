"""Background jobs of the distribution service (``ServiceDefinition.background``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from services.distribution.clock import Clock, local_date, system_clock
from services.distribution.domain import expiry
from services.distribution.settings import DistributionSettings, distribution_settings
from shared.db import SessionFactory
from shared.service import ServiceRuntime

log = logging.getLogger(__name__)


class ExpiryWriteOffJob:
    """Once per local day, write off expired stock; the day's ``expiry_run`` row makes a
    restart or a second replica a no-op."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    async def run_once(
        self, sessions: SessionFactory, settings: DistributionSettings
    ) -> expiry.ExpiryRunResult | None:
        now = self.clock()
        async with sessions() as session, session.begin():
            return await expiry.write_off_expired(
                session=session,
                today=local_date(now, settings.timezone),
                now=now,
                window_days=settings.days_of_cover_window_days,
            )

    async def __call__(self, runtime: ServiceRuntime[Any], stop: asyncio.Event) -> None:
        settings = distribution_settings(runtime.settings)
        while not stop.is_set():
            try:
                result = await self.run_once(runtime.sessions, settings)
                if result is not None:
                    log.info(
                        "expired stock written off",
                        extra={
                            "run_on": result.run_on.isoformat(),
                            "batches": result.batches_written_off,
                            "quantity": result.quantity_written_off,
                        },
                    )
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away: try again at the next tick
                log.warning("expiry write-off failed; retrying later", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.expiry_check_seconds)

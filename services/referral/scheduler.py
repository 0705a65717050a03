"""The deadline scheduler: a background job of the service process (every replica runs one;
the database decides who escalates what, see :mod:`services.referral.domain.deadlines`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from services.referral.context import ReferralContext
from services.referral.domain import deadlines
from shared import metrics
from shared.jobs import BackgroundJob
from shared.service import ServiceRuntime

log = logging.getLogger(__name__)

Job = BackgroundJob


def scheduler_job(context: ReferralContext) -> Job:
    """``async def job(runtime, stop)``: tick, then wait for the interval or the stop."""

    async def job(runtime: ServiceRuntime[Any], stop: asyncio.Event) -> None:
        settings = context.settings
        if not settings.scheduler_enabled:
            return
        while not stop.is_set():
            try:
                result = await deadlines.tick(
                    sessions=runtime.sessions, settings=settings, now=context.now()
                )
                metrics.REFERRALS_OVERDUE_EVENTS.inc(len(result.overdue))
                for _, tier in result.escalations:
                    metrics.REFERRAL_ESCALATIONS.labels(str(tier)).inc()
                metrics.REFERRALS_REROUTED.inc(len(result.rerouted))
                metrics.REFERRAL_ESCALATION_FAILURES.inc(len(result.failed))
                if result.changed or result.failed:
                    log.info(
                        "deadline check",
                        extra={
                            "overdue": len(result.overdue),
                            "escalations": len(result.escalations),
                            "rerouted": len(result.rerouted),
                            "failed": len(result.failed),
                        },
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away: try again next interval
                log.warning("deadline check failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.scheduler_interval_seconds)

    return job

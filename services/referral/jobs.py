"""Background work of the referral service: the deadline scheduler.

Every replica runs one; the database decides who escalates what (see
:mod:`services.referral.domain.deadlines`).
"""

from __future__ import annotations

import logging

from services.referral.domain import deadlines
from services.referral.settings import ReferralSettings
from shared import metrics
from shared.jobs import periodic
from shared.service import ServiceRuntime

log = logging.getLogger(__name__)


async def check_deadlines(runtime: ServiceRuntime[ReferralSettings]) -> None:
    """One round: escalate (or reroute) every referral whose next step is due now."""
    settings = runtime.settings
    if not settings.scheduler_enabled:
        return  # another process runs the scheduler (HAVEN_REFERRAL_SCHEDULER_ENABLED=false)
    result = await deadlines.tick(sessions=runtime.sessions, settings=settings, now=runtime.clock())
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


deadline_scheduler = periodic(
    lambda settings: settings.scheduler_interval_seconds, check_deadlines, name="deadline-scheduler"
)

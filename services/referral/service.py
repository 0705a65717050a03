"""The referral service: what it is made of (wiring only)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.referral import api, handlers, jobs
from services.referral.domain import metrics as referral_metrics
from services.referral.settings import ReferralSettings
from shared import metrics
from shared.clock import Clock, system_clock
from shared.service import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="referral",
    title="Haven referral",
    settings_class=ReferralSettings,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    handlers=handlers.register,
    jobs=[jobs.deadline_scheduler, metrics.refresh_job(*referral_metrics.GAUGES)],
)


def create_app(settings: ReferralSettings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_REFERRAL_*``) unless given."""
    return build_app(DEFINITION, settings, clock=clock)

"""The referral service: what it is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from services.referral import api, handlers
from services.referral.context import ReferralContext
from services.referral.domain import metrics as referral_metrics
from services.referral.scheduler import scheduler_job
from services.referral.settings import ReferralSettings
from shared import metrics
from shared.service import ServiceDefinition, build_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class ReferralDefinition(ServiceDefinition[ReferralSettings]):
    """The referral service's definition, carrying the settings and clock its parts share."""

    context: ReferralContext = field(default_factory=ReferralContext)


def build_definition(
    context: ReferralContext | None = None, *, name: str = "referral"
) -> ReferralDefinition:
    """The service with its routes, handlers and deadline scheduler sharing one context
    (tests pass their own clock and settings; ``name`` also names the consumer group)."""
    context = context or ReferralContext()
    return ReferralDefinition(
        name=name,
        title="Haven referral",
        settings_class=ReferralSettings,
        migrations=MIGRATIONS,
        routers=[api.router],
        handlers=lambda consumer, runtime: handlers.register(consumer, context=context),
        jobs=[scheduler_job(context), metrics.refresh_job(*referral_metrics.GAUGES)],
        context=context,
    )


DEFINITION = build_definition()


def create_app(settings: ReferralSettings | None = None) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_REFERRAL_*``) unless given."""
    settings = settings or load_settings("referral", ReferralSettings)
    return build_app(build_definition(ReferralContext(settings)), settings)

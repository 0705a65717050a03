"""The referral service: what it is made of."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from services.referral import api, handlers
from services.referral.context import ReferralContext
from services.referral.scheduler import scheduler_job
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class ReferralDefinition(ServiceDefinition):
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
        migrations=MIGRATIONS,
        routers=[api.router],
        register_handlers=functools.partial(handlers.register, context=context),
        background=[scheduler_job(context)],
        context=context,
    )


DEFINITION = build_definition()

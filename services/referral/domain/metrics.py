"""Referral's business metrics: time to acceptance, and gauges read from its database (see
shared/metrics.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral import queries
from services.referral.domain.states import OPEN_STATUSES
from services.referral.domain.vocabulary import ServiceType
from services.referral.models import Referral
from shared import metrics
from shared.db import run
from shared.settings import ServiceSettings

_EVERY_SERVICE_TYPE = [(str(service_type),) for service_type in ServiceType]


def count_acceptance(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """Observe the time the provider took to accept, once the acceptance commits."""
    if referral.sent_at is None:
        return
    seconds = max(0.0, (now - referral.sent_at).total_seconds())
    histogram = metrics.REFERRAL_ACCEPTANCE_SECONDS.labels(referral.service_type)
    metrics.after_commit(session, lambda: histogram.observe(seconds))


async def _open_and_overdue(session: AsyncSession) -> list[tuple[str, float, float]]:
    found: Sequence[Any] = (
        await run(
            session, queries.OPEN_AND_OVERDUE, {"open": sorted(str(s) for s in OPEN_STATUSES)}
        )
    ).all()
    return [(service_type, float(n), float(overdue)) for service_type, n, overdue in found]


async def open_referrals(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    counts: dict[metrics.Labels, float] = {
        (service_type,): n for service_type, n, _ in await _open_and_overdue(session)
    }
    return metrics.with_zeros(counts, _EVERY_SERVICE_TYPE)


async def overdue_referrals(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    counts: dict[metrics.Labels, float] = {
        (service_type,): n for service_type, _, n in await _open_and_overdue(session)
    }
    return metrics.with_zeros(counts, _EVERY_SERVICE_TYPE)


GAUGES = (
    metrics.DatabaseGauge(metrics.REFERRALS_OPEN, open_referrals),
    metrics.DatabaseGauge(metrics.REFERRALS_OVERDUE, overdue_referrals),
)

"""Referral's business metrics: time to acceptance, and gauges read from its database (see
shared/metrics.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain.states import OPEN_STATUSES
from services.referral.domain.vocabulary import ServiceType
from services.referral.models import Referral
from shared import metrics
from shared.settings import ServiceSettings

# Overdue: the deadline scheduler marked it (overdue_at) and it has not moved on since.
_OPEN = sa.text(
    "SELECT service_type, count(*), count(*) FILTER (WHERE overdue_at IS NOT NULL) "
    "FROM referral WHERE status = ANY(:open) GROUP BY 1"
).bindparams(sa.bindparam("open", type_=sa.ARRAY(sa.Text)))

_EVERY_SERVICE_TYPE = [(str(service_type),) for service_type in ServiceType]


def count_acceptance(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """Observe the time the provider took to accept, once the acceptance commits."""
    if referral.sent_at is None:
        return
    seconds = max(0.0, (now - referral.sent_at).total_seconds())
    histogram = metrics.REFERRAL_ACCEPTANCE_SECONDS.labels(referral.service_type)
    metrics.after_commit(session, lambda: histogram.observe(seconds))


async def _open_and_overdue(session: AsyncSession) -> list[tuple[str, float, float]]:
    found = await metrics.rows(session, _OPEN, open=sorted(str(s) for s in OPEN_STATUSES))
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

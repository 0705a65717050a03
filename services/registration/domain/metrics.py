"""Registration's gauges read from its database (see shared/metrics.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.models import ReviewStatus
from shared import metrics
from shared.db import run
from shared.settings import ServiceSettings
from shared.vocabulary import HouseholdStatus

UNKNOWN = "unknown"


async def households(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    found: Sequence[Any] = (
        await run(session, queries.GAUGE_HOUSEHOLDS, {"unknown": UNKNOWN})
    ).all()
    return {(site, displacement, status): float(n) for site, displacement, status, n in found}


async def vulnerable_households(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    active = {"active": str(HouseholdStatus.ACTIVE)}
    found: Sequence[Any] = (await run(session, queries.GAUGE_VULNERABLE, active)).all()
    return metrics.with_zeros({(site,): float(n) for site, n in found}, await _sites(session))


async def pending_reviews(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    found: Sequence[Any] = (
        await run(session, queries.GAUGE_REVIEWS, {"open": str(ReviewStatus.OPEN)})
    ).all()
    return metrics.with_zeros({(site,): float(n) for site, n in found}, await _sites(session))


async def _sites(session: AsyncSession) -> list[metrics.Labels]:
    """Every site, so a site with nothing to count shows 0 rather than no line."""
    return [(site,) for (site,) in (await run(session, queries.GAUGE_SITES)).all()]


GAUGES = (
    metrics.DatabaseGauge(metrics.HOUSEHOLDS, households),
    metrics.DatabaseGauge(metrics.HOUSEHOLDS_VULNERABLE, vulnerable_households),
    metrics.DatabaseGauge(metrics.DUPLICATE_REVIEWS_PENDING, pending_reviews),
)

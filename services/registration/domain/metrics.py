"""Registration's gauges read from its database (see shared/metrics.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.models import ReviewStatus
from shared import metrics
from shared.settings import ServiceSettings
from shared.vocabulary import HouseholdStatus

UNKNOWN = "unknown"

_HOUSEHOLDS = sa.text(
    "SELECT site_id, coalesce(displacement_status, :unknown), status, count(*) "
    "FROM household GROUP BY 1, 2, 3"
)
_VULNERABLE = sa.text(
    "SELECT h.site_id, count(*) FROM household h WHERE h.status = :active AND EXISTS ("
    "SELECT 1 FROM household_member m WHERE m.household_id = h.id "
    "AND cardinality(m.vulnerabilities) > 0) GROUP BY 1"
)
_REVIEWS = sa.text("SELECT site_id, count(*) FROM duplicate_review WHERE status = :open GROUP BY 1")

_SITES = sa.text("SELECT id FROM registration_site")


async def households(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    found = await metrics.rows(session, _HOUSEHOLDS, unknown=UNKNOWN)
    return {(site, displacement, status): float(n) for site, displacement, status, n in found}


async def vulnerable_households(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    found = await metrics.rows(session, _VULNERABLE, active=str(HouseholdStatus.ACTIVE))
    return metrics.with_zeros({(site,): float(n) for site, n in found}, await _sites(session))


async def pending_reviews(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    found = await metrics.rows(session, _REVIEWS, open=str(ReviewStatus.OPEN))
    return metrics.with_zeros({(site,): float(n) for site, n in found}, await _sites(session))


async def _sites(session: AsyncSession) -> list[metrics.Labels]:
    """Every site, so a site with nothing to count shows 0 rather than no line."""
    return [(site,) for (site,) in await metrics.rows(session, _SITES)]


GAUGES = (
    metrics.DatabaseGauge(metrics.HOUSEHOLDS, households),
    metrics.DatabaseGauge(metrics.HOUSEHOLDS_VULNERABLE, vulnerable_households),
    metrics.DatabaseGauge(metrics.DUPLICATE_REVIEWS_PENDING, pending_reviews),
)

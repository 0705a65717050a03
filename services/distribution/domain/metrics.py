"""Distribution's business metrics: counted issues, and gauges read from its database (see
shared/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.settings import distribution_settings
from shared import metrics
from shared.settings import ServiceSettings

# Stock available today in the programme's time zone (expired batches are never issued).
_BALANCE = sa.text(
    "SELECT w.name, i.category, sum(b.quantity) FILTER ("
    "  WHERE b.expires_on IS NULL OR b.expires_on > (now() AT TIME ZONE :tz)::date) "
    "FROM stock_balance b JOIN warehouse w ON w.id = b.warehouse_id JOIN item i ON i.sku = b.sku "
    "GROUP BY 1, 2"
)
# Net units issued per warehouse and category in the window (the partial index
# stock_ledger_issues serves the kind and time filter).
_ISSUED = sa.text(
    "SELECT w.name, i.category, -sum(l.quantity) "
    "FROM stock_ledger l JOIN warehouse w ON w.id = l.warehouse_id JOIN item i ON i.sku = l.sku "
    "WHERE l.kind IN ('issue', 'void_reversal') AND l.recorded_at > now() - make_interval("
    "days => :days) GROUP BY 1, 2"
)
_BELOW_REORDER = sa.text(
    "SELECT w.name, i.category, count(*) FILTER (WHERE coalesce(b.on_hand, 0) < r.level) "
    "FROM reorder_level r JOIN warehouse w ON w.id = r.warehouse_id JOIN item i ON i.sku = r.sku "
    "LEFT JOIN (SELECT warehouse_id, sku, sum(quantity) AS on_hand FROM stock_balance "
    "           GROUP BY 1, 2) b ON b.warehouse_id = r.warehouse_id AND b.sku = r.sku "
    "GROUP BY 1, 2"
)
_BEDS = sa.text("SELECT site_id, sum(beds_occupied), sum(capacity_beds) FROM shelter GROUP BY 1")


def count_distribution(site: str, lines: Iterable[tuple[str, int]]) -> None:
    """Count a recorded distribution and its units by category; call it once its transaction
    committed (not for a replay, nor for one that rolled back)."""
    metrics.DISTRIBUTIONS_RECORDED.labels(site).inc()
    for category, quantity in lines:
        metrics.ITEMS_ISSUED.labels(site, category).inc(quantity)


async def stock_balance(
    session: AsyncSession, settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    timezone = distribution_settings(settings).timezone
    found = await metrics.rows(session, _BALANCE, tz=timezone)
    return {(warehouse, category): float(n or 0) for warehouse, category, n in found}


async def days_of_cover(
    session: AsyncSession, settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    own = distribution_settings(settings)
    window = own.days_of_cover_window_days
    issued = {
        (warehouse, category): float(n)
        for warehouse, category, n in await metrics.rows(session, _ISSUED, days=window)
    }
    balance = await stock_balance(session, settings)
    return {
        labels: round(balance.get(labels, 0.0) / (units / window), 1)
        for labels, units in issued.items()
        if units > 0
    }


async def below_reorder_level(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    found = await metrics.rows(session, _BELOW_REORDER)
    return {(warehouse, category): float(n) for warehouse, category, n in found}


async def _beds(session: AsyncSession) -> list[tuple[str, float, float]]:
    return [(site, float(occ), float(cap)) for site, occ, cap in await metrics.rows(session, _BEDS)]


async def beds_occupied(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    return {(site,): occupied for site, occupied, _ in await _beds(session)}


async def beds_capacity(
    session: AsyncSession, _settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    return {(site,): capacity for site, _, capacity in await _beds(session)}


GAUGES = (
    metrics.DatabaseGauge(metrics.STOCK_BALANCE, stock_balance),
    metrics.DatabaseGauge(metrics.STOCK_DAYS_OF_COVER, days_of_cover),
    metrics.DatabaseGauge(metrics.STOCK_BELOW_REORDER_LEVEL, below_reorder_level),
    metrics.DatabaseGauge(metrics.SHELTER_BEDS_OCCUPIED, beds_occupied),
    metrics.DatabaseGauge(metrics.SHELTER_BEDS_CAPACITY, beds_capacity),
)

"""Distribution's business metrics: counted issues, and gauges read from its database (see
shared/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution import queries
from services.distribution.settings import DistributionSettings
from shared import metrics
from shared.db import Query, run
from shared.settings import ServiceSettings


async def _rows(session: AsyncSession, query: Query, **params: Any) -> list[Any]:
    return list((await run(session, query, params)).all())


def count_distribution(site: str, lines: Iterable[tuple[str, int]]) -> None:
    """Count a recorded distribution and its units by category; call it once its transaction
    committed (not for a replay, nor for one that rolled back)."""
    metrics.DISTRIBUTIONS_RECORDED.labels(site).inc()
    for category, quantity in lines:
        metrics.ITEMS_ISSUED.labels(site, category).inc(quantity)


async def stock_balance(
    session: AsyncSession, settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    assert isinstance(settings, DistributionSettings)  # the runtime's settings are typed
    found = await _rows(session, queries.STOCK_BALANCE, tz=settings.timezone)
    return {(warehouse, category): float(n or 0) for warehouse, category, n in found}


async def days_of_cover(
    session: AsyncSession, settings: ServiceSettings
) -> dict[metrics.Labels, float]:
    assert isinstance(settings, DistributionSettings)  # the runtime's settings are typed
    window = settings.days_of_cover_window_days
    issued = {
        (warehouse, category): float(n)
        for warehouse, category, n in await _rows(session, queries.NET_ISSUED, days=window)
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
    found = await _rows(session, queries.BELOW_REORDER_LEVEL)
    return {(warehouse, category): float(n) for warehouse, category, n in found}


async def _beds(session: AsyncSession) -> list[tuple[str, float, float]]:
    return [(site, float(occ), float(cap)) for site, occ, cap in await _rows(session, queries.BEDS)]


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

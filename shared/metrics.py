"""Haven's business metrics, defined once: what a manager sees on the operations dashboard.

Two kinds:

* **Counters and histograms** a service's domain code moves at the moment something happens
  (a household registered, a distribution recorded, a referral accepted, a notification
  delivered).
* **Gauges derived from the database** (stock, beds, open referrals, pending reviews): a
  service's background job (:func:`refresh_job`) runs a few bounded ``GROUP BY`` queries every
  ``metrics_refresh_seconds`` (``HAVEN_<SERVICE>_METRICS_REFRESH_SECONDS``, default 15 s) and
  sets them, so every replica reports the same truth and dashboards aggregate with ``max()``.

Labels are bounded reference values only (site, displacement status, category, service type,
channel, status, warehouse name): never ids, names or free text. The infrastructure metrics
(HTTP, outbox, consumers) live next to their code in shared/http.py, shared/outbox.py and
shared/consumer/; docs/observability.md lists them all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.jobs import BackgroundJob, periodic

if TYPE_CHECKING:
    from shared.service import ServiceRuntime
    from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


# --- registration -------------------------------------------------------------------------

HOUSEHOLDS_REGISTERED = Counter(
    "haven_registration_households_registered_total",
    "Households registered (replays of an Idempotency-Key not counted), by site and the "
    "status they got: pending_review means a probable duplicate went to review.",
    ["site", "status"],
)
HOUSEHOLDS = Gauge(
    "haven_households",
    "Households on record, by site, displacement status and status (from the database).",
    ["site", "displacement_status", "status"],
)
HOUSEHOLDS_VULNERABLE = Gauge(
    "haven_households_vulnerable",
    "Active households with at least one member flagged vulnerable, by site (from the database).",
    ["site"],
)
DUPLICATE_REVIEWS_PENDING = Gauge(
    "haven_duplicate_reviews_pending",
    "Duplicate reviews waiting for a decision, by site (from the database).",
    ["site"],
)

# --- distribution -------------------------------------------------------------------------

DISTRIBUTIONS_RECORDED = Counter(
    "haven_distributions_total",
    "Distributions recorded (replays of a client_ref not counted), by site.",
    ["site"],
)
ITEMS_ISSUED = Counter(
    "haven_items_issued_total",
    "Units issued in recorded distributions, by site and item category.",
    ["site", "category"],
)
STOCK_BALANCE = Gauge(
    "haven_stock_balance",
    "Units available to issue (not expired), by warehouse and item category (from the database).",
    ["warehouse", "category"],
)
STOCK_DAYS_OF_COVER = Gauge(
    "haven_stock_days_of_cover",
    "Days the available stock lasts at the recent daily issue rate, by warehouse and category "
    "(absent when nothing of the category was issued in the window; from the database).",
    ["warehouse", "category"],
)
STOCK_BELOW_REORDER_LEVEL = Gauge(
    "haven_stock_items_below_reorder_level",
    "Items (SKUs) whose stock on hand is under their reorder level, by warehouse and category "
    "(0 for items with a level that are fine; from the database).",
    ["warehouse", "category"],
)
SHELTER_BEDS_OCCUPIED = Gauge(
    "haven_shelter_beds_occupied", "Shelter beds occupied, by site (from the database).", ["site"]
)
SHELTER_BEDS_CAPACITY = Gauge(
    "haven_shelter_beds_capacity", "Shelter beds in total, by site (from the database).", ["site"]
)

# --- referral -----------------------------------------------------------------------------

REFERRALS_OPEN = Gauge(
    "haven_referrals_open",
    "Referrals not finished yet, by service type (from the database).",
    ["service_type"],
)
REFERRALS_OVERDUE = Gauge(
    "haven_referrals_open_overdue",
    "Open referrals past their provider's acceptance deadline, by service type "
    "(from the database).",
    ["service_type"],
)
REFERRAL_ACCEPTANCE_SECONDS = Histogram(
    "haven_referral_acceptance_seconds",
    "Time from a referral being sent to a provider to the provider accepting it, by service type.",
    ["service_type"],
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400),
)
REFERRALS_OVERDUE_EVENTS = Counter(
    "haven_referrals_overdue_total", "Referrals that passed their acceptance deadline"
)
REFERRAL_ESCALATIONS = Counter(
    "haven_referral_escalations_total", "Deadline escalations reached, by tier", ["tier"]
)
REFERRALS_REROUTED = Counter(
    "haven_referrals_rerouted_on_deadline_total", "Referrals moved on at their deadline"
)
REFERRAL_ESCALATION_FAILURES = Counter(
    "haven_referral_escalation_failures_total", "Referrals whose escalation step failed"
)

# --- notifications ------------------------------------------------------------------------

NOTIFICATIONS = Counter(
    "haven_notifications_total",
    "Notifications reaching a state, by channel and state",
    ["channel", "status"],
)


def after_commit(session: AsyncSession, count: Callable[[], None]) -> None:
    """Call ``count`` once the session's current transaction commits, never for one that rolls
    back (a retried transaction is counted once)."""
    done = False

    def committed(_session: Any) -> None:
        nonlocal done
        if not done:
            done = True
            count()

    def rolled_back(_session: Any) -> None:
        nonlocal done
        done = True

    sa.event.listen(session.sync_session, "after_commit", committed, once=True)
    sa.event.listen(session.sync_session, "after_rollback", rolled_back, once=True)


# --- gauges derived from the database -----------------------------------------------------

Labels = tuple[str, ...]
GaugeQuery = Callable[[AsyncSession, "ServiceSettings"], Awaitable[Mapping[Labels, float]]]
"""Reads one gauge's values (label values in the gauge's label order → value), given the
service's settings."""


@dataclass
class DatabaseGauge:
    """A gauge whose every labelled value is read from the service's database."""

    gauge: Gauge
    query: GaugeQuery
    _shown: set[Labels] = field(default_factory=set, repr=False)

    def show(self, values: Mapping[Labels, float]) -> None:
        """Set the new values, then drop label sets the database no longer has (in that
        order, so a scrape in between never sees an empty gauge)."""
        for labels, value in values.items():
            self.gauge.labels(*labels).set(value)
        for gone in self._shown - set(values):
            with contextlib.suppress(KeyError):
                self.gauge.remove(*gone)
        self._shown = set(values)


async def rows(session: AsyncSession, sql: Any, **params: Any) -> list[Any]:
    """The rows of a plain SQL query (for the small aggregate queries of the gauges)."""
    connection = await session.connection()
    result = await connection.execute(sql, params)
    return list(result.all())


def with_zeros(values: Mapping[Labels, float], expected: Iterable[Labels]) -> dict[Labels, float]:
    """``values`` with 0 for every expected label set that has none (bounded vocabularies)."""
    return {**{labels: 0.0 for labels in expected}, **values}


async def refresh(runtime: ServiceRuntime[Any], gauges: Iterable[DatabaseGauge]) -> None:
    """Read every gauge's values in one read-only transaction, then show them."""
    results: list[tuple[DatabaseGauge, Mapping[Labels, float]]] = []
    async with runtime.sessions() as session, session.begin():
        for gauge in gauges:
            results.append((gauge, await gauge.query(session, runtime.settings)))
    for gauge, values in results:
        gauge.show(values)


def refresh_job(*gauges: DatabaseGauge) -> BackgroundJob:
    """A background job refreshing ``gauges`` every ``metrics_refresh_seconds``."""

    async def refresh_gauges(runtime: ServiceRuntime[Any]) -> None:
        await refresh(runtime, gauges)

    return periodic(
        lambda settings: settings.metrics_refresh_seconds, refresh_gauges, name="metrics-refresh"
    )

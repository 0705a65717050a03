"""Helpers of the distribution tests: a running service, a site with its staff, households."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.distribution.domain.policy import load_policies
from services.distribution.models import ItemCategory
from services.distribution.service import DEFINITION
from services.distribution.settings import DistributionSettings
from shared.auth import Role
from shared.events.catalog import CATALOG
from shared.events.envelope import Envelope, EventPayload
from shared.events.registration import HouseholdRegistered
from shared.service import ServiceRuntime, build_app
from shared.settings import CommonSettings
from shared.vocabulary import HouseholdStatus, NeedType
from tests.support.apps import serving
from tests.support.clock import FakeClock
from tests.support.events import envelope, household_profile
from tests.support.tokens import auth_headers

START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
"""The tests' default 'now' (a Monday morning in the programme)."""


POLICY_NAMING_A_VULNERABILITY = """
version: "dignity-1"
effective_from: 2025-01-01
categories:
  food: {basis: household, quantity: 1, window_days: 30}
  hygiene:
    basis: person
    quantity: 1
    window_days: 30
    requires_vulnerability: pregnant_or_lactating
"""
"""A policy whose one vulnerability is ``pregnant_or_lactating`` (dignity kits)."""


def policy_naming_a_vulnerability(directory: Path) -> Path:
    """``directory`` holding :data:`POLICY_NAMING_A_VULNERABILITY` as its only version."""
    (directory / "2025-01-01.yaml").write_text(POLICY_NAMING_A_VULNERABILITY, encoding="utf-8")
    return directory


def new_site() -> str:
    return f"T-{uuid.uuid4().hex[:8].upper()}"


def profile(
    *,
    site_id: str,
    size: int = 3,
    needs: Sequence[NeedType] = (NeedType.FOOD, NeedType.HYGIENE),
    version: int = 1,
    status: HouseholdStatus = HouseholdStatus.ACTIVE,
    household_id: uuid.UUID | None = None,
    event: type[HouseholdRegistered] = HouseholdRegistered,
) -> HouseholdRegistered:
    """A household profile as registration publishes it, one member per person."""
    return household_profile(
        household_id,
        event=event,
        site_id=site_id,
        size=size,
        members=size,
        needs=needs,
        status=status,
        version=version,
    )


def envelope_of(payload: EventPayload) -> Envelope[Any]:
    return envelope(payload, source="haven/registration", actor="test")


async def publish(bootstrap: str, *payloads: EventPayload, key: str) -> None:
    """Publish events the way registration's relay does (CloudEvents binary binding)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for payload in payloads:
            envelope = envelope_of(payload)
            await producer.send_and_wait(
                CATALOG.topic_for(payload).name,
                value=envelope.kafka_value(),
                key=key.encode(),
                headers=envelope.kafka_headers(),
            )
    finally:
        await producer.stop()


def settings_for(
    infra: Any, database_url: str, *, policy_dir: Path | None = None, **overrides: Any
) -> DistributionSettings:
    values: dict[str, Any] = {
        "service": "distribution",
        "database_url": database_url,
        "relay_poll_seconds": 0.2,
        "consumers_enabled": False,
        "db_pool_size": 15,
        "common": CommonSettings(kafka_bootstrap=infra.kafka_bootstrap),
    }
    if policy_dir is not None:
        values["policy_dir"] = policy_dir
    values.update(overrides)
    return DistributionSettings(**values)


@dataclass
class Service:
    """A distribution service running in-process with its whole runtime."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    settings: DistributionSettings

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime


@asynccontextmanager
async def running_service(
    settings: DistributionSettings,
    *,
    clock: FakeClock,
    name: str = "distribution",
    background: Sequence[Any] = (),
) -> AsyncIterator[Service]:
    """The app with its lifespan (migrations, relay, consumers, policy) and an HTTP client.

    ``name`` names the consumer group (``haven-<name>``): tests that consume use their own.
    """
    definition = dataclasses.replace(DEFINITION, name=name, jobs=tuple(background))
    app = build_app(definition, settings, clock=clock)
    async with serving(app, base_url="http://distribution") as client:
        yield Service(app=app, client=client, clock=clock, settings=settings)


async def insert_household(service: Service, payload: HouseholdRegistered) -> None:
    """Put a household in the read model through the service's own handler."""
    from services.distribution.domain import households

    async with service.runtime.sessions() as session, session.begin():
        await households.apply_profile(
            session=session,
            profile=payload,
            at=service.clock(),
            policies=load_policies(service.runtime.settings.policy_dir),
        )


async def ledger_mismatches(service: Service) -> list[Any]:
    """Balances that differ from the sum of their ledger entries (should be none)."""
    import sqlalchemy as sa

    async with service.runtime.engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                """
                SELECT b.warehouse_id, b.sku, b.batch, b.quantity,
                       coalesce(sum(l.quantity), 0) AS ledger
                FROM stock_balance b
                LEFT JOIN stock_ledger l
                  ON l.warehouse_id = b.warehouse_id AND l.sku = b.sku
                 AND l.batch IS NOT DISTINCT FROM b.batch
                GROUP BY b.id
                HAVING b.quantity <> coalesce(sum(l.quantity), 0) OR b.quantity < 0
                """
            )
        )
        return list(result.all())


async def eventually_true(
    check: Callable[[], Any], *, timeout: float = 20.0, what: str = ""
) -> None:
    """Poll ``check`` (an async predicate) until it holds; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Site:
    """One site of the programme with a warehouse, and its staff's tokens."""

    service: Service
    site_id: str
    warehouse_id: str
    admin: dict[str, str]
    operator: dict[str, str]
    manager: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.service.client

    async def item(self, category: ItemCategory, *, unit: str = "kit") -> str:
        sku = f"{category.value[:4].upper()}-{uuid.uuid4().hex[:8]}"
        response = await self.client.post(
            "/v1/items",
            json={"sku": sku, "name": f"Test {category.value}", "category": category, "unit": unit},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return sku

    async def warehouse(self, name: str | None = None) -> str:
        response = await self.client.post(
            "/v1/warehouses",
            json={
                "name": name or f"Warehouse {uuid.uuid4().hex[:6]}",
                "site_id": self.site_id,
                "location": {"admin1": "MD01"},
            },
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def receive(
        self,
        sku: str,
        quantity: int,
        *,
        batch: str | None = None,
        expires_on: str | None = None,
        warehouse_id: str | None = None,
        reference: str | None = None,
    ) -> httpx.Response:
        line: dict[str, Any] = {"sku": sku, "quantity": quantity}
        if batch is not None:
            line["batch"] = batch
        if expires_on is not None:
            line["expires_on"] = expires_on
        return await self.client.post(
            f"/v1/warehouses/{warehouse_id or self.warehouse_id}/receipts",
            json={"lines": [line], "reference": reference or f"GRN-{uuid.uuid4().hex[:10]}"},
            headers=self.operator,
        )

    async def stocked(self, category: ItemCategory, quantity: int = 100, **receipt: Any) -> str:
        sku = await self.item(category)
        response = await self.receive(sku, quantity, **receipt)
        assert response.status_code == 201, response.text
        return sku

    async def household(
        self,
        *,
        size: int = 3,
        needs: Sequence[NeedType] = (NeedType.FOOD, NeedType.HYGIENE),
        **kwargs: Any,
    ) -> str:
        payload = profile(site_id=self.site_id, size=size, needs=needs, **kwargs)
        await insert_household(self.service, payload)
        return str(payload.household_id)

    async def prescription(self, household_id: str, reference: str) -> httpx.Response:
        """Record ``reference`` in the prescription register for the household (as a manager)."""
        return await self.client.post(
            f"/v1/households/{household_id}/prescriptions",
            json={"reference": reference},
            headers=self.manager,
        )

    async def prescribed(self, household_id: str, reference: str | None = None) -> str:
        """A reference recorded for the household (a new one unless given)."""
        reference = reference or f"RX-{uuid.uuid4().hex[:10]}"
        response = await self.prescription(household_id, reference)
        assert response.status_code == 201, response.text
        return reference

    async def distribute(
        self,
        household_id: str,
        lines: list[dict[str, Any]],
        *,
        client_ref: str | None = None,
        headers: dict[str, str] | None = None,
        warehouse_id: str | None = None,
    ) -> httpx.Response:
        return await self.client.post(
            "/v1/distributions",
            json={
                "household_id": household_id,
                "warehouse_id": warehouse_id or self.warehouse_id,
                "lines": lines,
                "client_ref": client_ref or f"desk-{uuid.uuid4().hex}",
            },
            headers=headers or self.operator,
        )

    async def stock(self, warehouse_id: str | None = None) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/warehouses/{warehouse_id or self.warehouse_id}/stock", headers=self.operator
        )
        assert response.status_code == 200, response.text
        return {item["sku"]: item for item in response.json()["items"]}


async def make_site(service: Service) -> Site:
    site_id = new_site()
    site = Site(
        service=service,
        site_id=site_id,
        warehouse_id="",
        admin=auth_headers(Role.ADMIN),
        operator=auth_headers(Role.WAREHOUSE_OPERATOR, sites=[site_id]),
        manager=auth_headers(Role.MANAGER, sites=[site_id]),
    )
    site.warehouse_id = await site.warehouse()
    return site


async def every_page(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str],
    params: dict[str, Any] | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Every item of a paged list, following ``next_cursor`` to the last page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**(params or {}), "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items

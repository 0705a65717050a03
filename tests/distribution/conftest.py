"""Fixtures of the distribution tests: one service for the package (its own database, the real
broker), a controlled clock reset for every test, readers of the service's two topics, and a
fresh site with a warehouse for each test (so tests never share data)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.distribution.models import ItemCategory
from shared.auth import Role
from shared.events.catalog import AUDIT, DISTRIBUTIONS, STOCK
from shared.vocabulary import NeedType
from tests.distribution.support import (
    START,
    FakeClock,
    Service,
    TopicReader,
    bearer,
    insert_household,
    new_site,
    profile,
    running_service,
    settings_for,
)
from tests.support import create_catalog_topics, migrated_database


@pytest.fixture(scope="package")
async def service(infra: Any) -> AsyncIterator[Service]:
    await create_catalog_topics(infra.kafka_bootstrap)
    url = await migrated_database(infra, "distribution")
    async with running_service(settings_for(infra, url), clock=FakeClock()) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "service" in request.fixturenames:
        request.getfixturevalue("service").clock.set(START)


@pytest.fixture(scope="package")
async def distributions_topic(infra: Any, service: Service) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(infra.kafka_bootstrap, DISTRIBUTIONS.name).open()
    yield reader
    await reader.close()


@pytest.fixture(scope="package")
async def stock_topic(infra: Any, service: Service) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(infra.kafka_bootstrap, STOCK.name).open()
    yield reader
    await reader.close()


@pytest.fixture(scope="package")
async def audit_topic(infra: Any, service: Service) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(infra.kafka_bootstrap, AUDIT.name).open()
    yield reader
    await reader.close()


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
        admin=bearer([Role.ADMIN]),
        operator=bearer([Role.WAREHOUSE_OPERATOR], [site_id]),
        manager=bearer([Role.MANAGER], [site_id]),
    )
    site.warehouse_id = await site.warehouse()
    return site


@pytest.fixture
async def site(service: Service) -> Site:
    return await make_site(service)

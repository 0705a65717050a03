"""The demo reference data loads through the API, and loading it twice is harmless."""

from __future__ import annotations

from typing import Any

import yaml

from haven.stack import demo_loader_token
from shared.auth import Role
from tests.distribution.support import START, every_page, running_service, settings_for
from tests.support import ROOT, migrated_database
from tests.support.clock import FakeClock
from tests.support.tokens import auth_headers

DEMO = ROOT / "deploy" / "local" / "demo" / "distribution.yaml"
CHISINAU = "5b0f6c1e-2f57-4a4e-9c53-6a1d2f0c0001"


async def test_the_demo_data_loads_and_reloads(infra: Any) -> None:
    requests = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    url = await migrated_database(infra, "distribution")
    admin = auth_headers(Role.ADMIN)
    loader = {"Authorization": f"Bearer {demo_loader_token()}"}  # what `make run` sends
    async with running_service(settings_for(infra, url), clock=FakeClock(START)) as service:
        for attempt in (1, 2):
            for request in requests:
                response = await service.client.request(
                    request["method"], request["path"], json=request["body"], headers=loader
                )
                expected = {201, 200} if attempt == 1 else {409, 200}
                assert response.status_code in expected, (request["path"], response.text)
        shelters = await every_page(service.client, "/v1/shelters", headers=admin)
        assert {s["site_id"] for s in shelters} == {"MDA-CHI", "MDA-PAL", "MDA-BAL"}
        warehouses = await every_page(service.client, "/v1/warehouses", headers=admin)
        assert len(warehouses) == 4
        stock = await service.client.get(f"/v1/warehouses/{CHISINAU}/stock", headers=loader)
        on_hand = {line["sku"]: line["on_hand"] for line in stock.json()["items"]}
        assert on_hand["FOOD-PARCEL-15KG"] == 1200  # received once, though loaded twice

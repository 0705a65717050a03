"""The demo reference data loads through the API, and loading it twice is harmless."""

from __future__ import annotations

from typing import Any

import yaml

from shared.auth import Role
from tests.distribution.support import FakeClock, bearer, running_service, settings_for
from tests.support import ROOT, migrated_database

DEMO = ROOT / "deploy" / "local" / "demo" / "distribution.yaml"


async def test_the_demo_data_loads_and_reloads(infra: Any) -> None:
    requests = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    url = await migrated_database(infra, "distribution")
    admin = bearer([Role.ADMIN])
    async with running_service(settings_for(infra, url), clock=FakeClock()) as service:
        for attempt in (1, 2):
            for request in requests:
                response = await service.client.request(
                    request["method"], request["path"], json=request["body"], headers=admin
                )
                expected = {201, 200} if attempt == 1 else {409, 200}
                assert response.status_code in expected, (request["path"], response.text)
        shelters = (await service.client.get("/v1/shelters", headers=admin)).json()
        assert {s["site_id"] for s in shelters} == {"MDA-CHI", "MDA-PAL", "MDA-BAL"}
        warehouses = (await service.client.get("/v1/warehouses", headers=admin)).json()
        assert len(warehouses) == 4

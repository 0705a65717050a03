"""Register a household through registration's API → its entitlements appear in distribution →
stock received → a distribution recorded → DistributionRecorded on the topic; a second
identical attempt is refused as over entitlement."""

from __future__ import annotations

import uuid

from shared.events.catalog import DISTRIBUTIONS
from shared.events.distribution import DistributionRecorded
from shared.events.envelope import headers_to_dict
from tests.e2e.flows import ADMIN, create_site, household_body, register, until_ok
from tests.e2e.stack import Role, Stack, token
from tests.support import eventually, read_topic_to_end


async def test_a_registered_household_is_served_once_within_its_entitlement(stack: Stack) -> None:
    site = await create_site(stack)
    household = await register(
        stack,
        site,
        household_body(
            site, given="Олена", family="Бондаренко", needs=[{"type": "food", "priority": "high"}]
        ),
    )
    assert household["status"] == "active"
    household_id = household["id"]

    distribution = stack["distribution"]
    sku = "FOOD-" + uuid.uuid4().hex[:6].upper()
    created = await distribution.post(
        "/v1/items",
        json={"sku": sku, "name": "Food parcel", "category": "food", "unit": "parcel"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    warehouse = await distribution.post(
        "/v1/warehouses",
        json={"name": f"Warehouse {site}", "site_id": site, "location": {"admin1": "MD01"}},
        headers=ADMIN,
    )
    assert warehouse.status_code == 201, warehouse.text
    warehouse_id = warehouse.json()["id"]
    operator = token(Role.WAREHOUSE_OPERATOR, sites=(site,), sub="operator-1")
    receipt = await distribution.post(
        f"/v1/warehouses/{warehouse_id}/receipts",
        json={"lines": [{"sku": sku, "quantity": 20}], "reference": "GRN-1"},
        headers=operator,
    )
    assert receipt.status_code == 201, receipt.text

    # The household reached distribution only through registration's events.
    entitlements = await until_ok(
        stack,
        "distribution",
        f"/v1/households/{household_id}/entitlements",
        operator,
        "the household's entitlements in distribution",
    )
    assert entitlements

    request = {
        "household_id": household_id,
        "warehouse_id": warehouse_id,
        "lines": [{"sku": sku, "quantity": 1}],
        "client_ref": f"desk-1-{uuid.uuid4()}",
    }
    first = await distribution.post("/v1/distributions", json=request, headers=operator)
    assert first.status_code == 201, first.text
    distribution_id = first.json()["id"]

    again = await distribution.post(
        "/v1/distributions",
        json={**request, "client_ref": f"desk-2-{uuid.uuid4()}"},
        headers=operator,
    )
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "urn:haven:problem:entitlement-exceeded"

    found: list[DistributionRecorded] = []

    async def recorded() -> bool:
        records = await read_topic_to_end(stack.bootstrap, DISTRIBUTIONS.name)
        found[:] = [
            DistributionRecorded.model_validate_json(r.value)
            for r in records
            if headers_to_dict(r.headers).get("ce_type") == "DistributionRecorded"
            and r.key == household_id.encode()
        ]
        return bool(found)

    await eventually(recorded, timeout=30, what="DistributionRecorded on the topic")
    assert [str(e.distribution_id) for e in found] == [distribution_id]
    assert found[0].lines[0].sku == sku and found[0].lines[0].quantity == 1

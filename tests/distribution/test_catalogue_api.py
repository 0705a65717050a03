"""Items, warehouses and reorder levels: who may manage them, duplicates, bad input, sites."""

from __future__ import annotations

import uuid

from services.distribution.models import ItemCategory
from shared.auth import Role
from tests.distribution.support import Site, every_page
from tests.support.tokens import auth_headers

PROBLEM = "application/problem+json"


async def test_admin_creates_items_and_a_duplicate_sku_is_a_409(site: Site) -> None:
    sku = f"HYG-{uuid.uuid4().hex[:6]}"
    body = {"sku": sku, "name": "Hygiene kit (family)", "category": "hygiene", "unit": "kit"}
    created = await site.client.post("/v1/items", json=body, headers=site.admin)
    assert created.status_code == 201
    assert created.json() == body
    again = await site.client.post("/v1/items", json=body, headers=site.admin)
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["type"] == "urn:haven:problem:already-exists"
    assert body in await every_page(site.client, "/v1/items", headers=site.operator)


async def test_only_admins_manage_the_catalogue_and_a_token_is_required(site: Site) -> None:
    body = {"sku": "NFI-X", "name": "Blanket", "category": "non_food_item", "unit": "piece"}
    assert (await site.client.post("/v1/items", json=body)).status_code == 401
    assert (
        await site.client.post("/v1/items", json=body, headers=site.operator)
    ).status_code == 403
    warehouse = {"name": "W", "site_id": site.site_id, "location": {"admin1": "MD01"}}
    refused = await site.client.post("/v1/warehouses", json=warehouse, headers=site.manager)
    assert refused.status_code == 403


async def test_item_input_is_validated_field_by_field(site: Site) -> None:
    response = await site.client.post(
        "/v1/items",
        json={
            "sku": "bad sku!",
            "name": "Line\nbreak",
            "category": "fuel",
            "unit": "kit",
            "colour": "red",
        },
        headers=site.admin,
    )
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"sku", "name", "category", "colour"}
    assert fields["colour"] == "unknown field"


async def test_warehouses_are_seen_only_at_their_sites(site: Site) -> None:
    other = auth_headers(Role.WAREHOUSE_OPERATOR, sites=["ELSEWHERE"])
    mine = await site.client.get(f"/v1/warehouses/{site.warehouse_id}", headers=site.operator)
    assert mine.status_code == 200 and mine.json()["site_id"] == site.site_id
    theirs = await site.client.get(f"/v1/warehouses/{site.warehouse_id}", headers=other)
    assert theirs.status_code == 404
    assert theirs.json()["type"] == "urn:haven:problem:warehouse-not-found"
    listed = await every_page(site.client, "/v1/warehouses", headers=other)
    assert site.warehouse_id not in {w["id"] for w in listed}
    stock = await site.client.get(f"/v1/warehouses/{site.warehouse_id}/stock", headers=other)
    assert stock.status_code == 404


async def test_a_warehouse_with_the_same_name_at_the_same_site_is_a_409(site: Site) -> None:
    body = {"name": "Palanca hub", "site_id": site.site_id, "location": {"admin1": "MD01"}}
    assert (
        await site.client.post("/v1/warehouses", json=body, headers=site.admin)
    ).status_code == 201
    again = await site.client.post("/v1/warehouses", json=body, headers=site.admin)
    assert again.status_code == 409
    with_id = {**body, "name": "Other", "id": site.warehouse_id}
    assert (
        await site.client.post("/v1/warehouses", json=with_id, headers=site.admin)
    ).status_code == 409


async def test_reorder_levels_are_set_per_warehouse_and_sku(site: Site) -> None:
    sku = await site.item(ItemCategory.FOOD)
    url = f"/v1/warehouses/{site.warehouse_id}/reorder-levels/{sku}"
    response = await site.client.put(url, json={"reorder_level": 20}, headers=site.manager)
    assert response.status_code == 200
    assert response.json() == {"warehouse_id": site.warehouse_id, "sku": sku, "reorder_level": 20}
    assert (await site.client.put(url, json={"reorder_level": 5}, headers=site.admin)).json()[
        "reorder_level"
    ] == 5
    unknown = await site.client.put(
        f"/v1/warehouses/{site.warehouse_id}/reorder-levels/NOPE-1",
        json={"reorder_level": 5},
        headers=site.admin,
    )
    assert unknown.status_code == 422 and unknown.json()["skus"] == ["NOPE-1"]
    negative = await site.client.put(url, json={"reorder_level": -1}, headers=site.admin)
    assert negative.status_code == 422
    assert (
        await site.client.put(url, json={"reorder_level": 5}, headers=site.operator)
    ).status_code == 403

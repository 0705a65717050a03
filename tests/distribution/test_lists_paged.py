"""Every list of the service comes in pages (``limit``, ``cursor``; issue #15 item 16): the
pages hold every row once, in order, within the caller's sites, and a cursor this service did
not hand out is a 400."""

from __future__ import annotations

import uuid

import pytest

from services.distribution.models import ItemCategory
from shared.pagination import MAX_LIMIT, encode_cursor
from shared.vocabulary import NeedType
from tests.distribution.support import Site, every_page
from tests.distribution.test_shelter_api import allocate, new_shelter


async def test_items_come_in_pages_by_sku(site: Site) -> None:
    mine = {await site.item(ItemCategory.FOOD) for _ in range(3)}
    first = await site.client.get("/v1/items", params={"limit": 2}, headers=site.operator)
    assert first.status_code == 200
    assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
    every = await every_page(site.client, "/v1/items", headers=site.operator, limit=2)
    skus = [item["sku"] for item in every]
    assert skus == sorted(skus) and len(skus) == len(set(skus))
    assert mine <= set(skus)


async def test_warehouses_come_in_pages_within_the_callers_sites(site: Site) -> None:
    for _ in range(4):
        await site.warehouse()
    first = await site.client.get("/v1/warehouses", params={"limit": 2}, headers=site.operator)
    assert [w["site_id"] for w in first.json()["items"]] == [site.site_id] * 2
    every = await every_page(site.client, "/v1/warehouses", headers=site.operator, limit=2)
    assert len(every) == 5 and {w["site_id"] for w in every} == {site.site_id}
    assert len({w["id"] for w in every}) == 5


async def test_shelters_and_allocations_come_in_pages(site: Site) -> None:
    shelters = [await new_shelter(site, beds=20) for _ in range(3)]
    every = await every_page(site.client, "/v1/shelters", headers=site.operator, limit=2)
    assert {s["id"] for s in every} == {s["id"] for s in shelters}
    households = [await site.household(size=1, needs=[NeedType.SHELTER]) for _ in range(3)]
    for household in households:
        assert (await allocate(site, shelters[0], household, 1)).status_code == 201
    path = f"/v1/shelters/{shelters[0]['id']}/allocations"
    first = await site.client.get(path, params={"limit": 2}, headers=site.manager)
    assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
    allocations = await every_page(site.client, path, headers=site.manager, limit=2)
    listed = [a["household_id"] for a in allocations]
    assert sorted(listed) == sorted(households)  # one clock time: ordered by id among them


@pytest.mark.parametrize(
    "path", ["/v1/items", "/v1/warehouses", "/v1/shelters", "/v1/shelters/{shelter}/allocations"]
)
async def test_a_forged_cursor_is_a_400_and_the_limit_is_bounded(site: Site, path: str) -> None:
    shelter = await new_shelter(site)
    url = path.format(shelter=shelter["id"])
    for cursor in ("not-a-cursor", encode_cursor([1, 2, 3]), encode_cursor(["\x00", "x", "y"])):
        forged = await site.client.get(url, params={"cursor": cursor}, headers=site.manager)
        assert forged.status_code == 400, (cursor, forged.text)
        assert forged.json()["type"] == "urn:haven:problem:invalid-cursor"
    too_many = await site.client.get(url, params={"limit": MAX_LIMIT + 1}, headers=site.manager)
    assert too_many.status_code == 422


async def test_a_cursor_with_a_nul_byte_is_refused_not_a_500(site: Site) -> None:
    cursor = encode_cursor([f"\x00{uuid.uuid4().hex}"])
    response = await site.client.get("/v1/items", params={"cursor": cursor}, headers=site.admin)
    assert response.status_code == 400

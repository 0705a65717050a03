"""Shelter beds: capacity (409 when full, no waitlist), entitlement, check-out, occupancy and
space per person, events on the topic, and concurrent allocations never over capacity."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from shared.auth import Role
from shared.vocabulary import NeedType
from tests.distribution.support import Site, every_page
from tests.support.tokens import auth_headers
from tests.support.topics import TopicReader

SHELTER_NEED = [NeedType.SHELTER, NeedType.FOOD]


async def new_shelter(site: Site, beds: int = 10, area: str = "100") -> dict[str, Any]:
    response = await site.client.post(
        "/v1/shelters",
        json={
            "name": f"Centre {uuid.uuid4().hex[:6]}",
            "site_id": site.site_id,
            "capacity_beds": beds,
            "floor_area_m2": area,
        },
        headers=site.admin,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def allocate(
    site: Site, shelter: dict[str, Any], household: str, beds: int, **extra: Any
) -> Any:
    return await site.client.post(
        f"/v1/shelters/{shelter['id']}/allocations",
        json={"household_id": household, "beds": beds, "check_in": "2025-03-10", **extra},
        headers=site.operator,
    )


async def test_shelters_are_created_by_admins_and_seen_at_their_site(site: Site) -> None:
    shelter = await new_shelter(site, beds=40, area="180.5")
    assert shelter["beds_free"] == 40 and shelter["space_per_person_m2"] is None
    duplicate = await site.client.post(
        "/v1/shelters",
        json={
            "name": shelter["name"],
            "site_id": site.site_id,
            "capacity_beds": 5,
            "floor_area_m2": 10,
        },
        headers=site.admin,
    )
    assert duplicate.status_code == 409
    assert (
        await site.client.post(
            "/v1/shelters",
            json={"name": "X", "site_id": site.site_id, "capacity_beds": 0, "floor_area_m2": 10},
            headers=site.admin,
        )
    ).status_code == 422
    outsider = auth_headers(Role.WAREHOUSE_OPERATOR, sites=["ELSEWHERE"])
    assert (
        await site.client.get(f"/v1/shelters/{shelter['id']}", headers=outsider)
    ).status_code == 404
    mine = await every_page(site.client, "/v1/shelters", headers=site.operator)
    assert shelter["id"] in {s["id"] for s in mine}


async def test_beds_are_allocated_within_entitlement_and_capacity_and_published(
    site: Site, distributions_topic: TopicReader
) -> None:
    shelter = await new_shelter(site, beds=5, area="100")
    family = await site.household(size=3, needs=SHELTER_NEED)
    too_many = await allocate(site, shelter, family, 4)
    assert too_many.status_code == 409
    assert too_many.json()["type"].endswith("entitlement-exceeded")
    assert too_many.json()["lines"][0]["allowed"] == 3
    no_need = await allocate(site, shelter, await site.household(size=2, needs=[NeedType.FOOD]), 1)
    assert (
        no_need.status_code == 409 and no_need.json()["lines"][0]["reason"] == "need_not_assessed"
    )

    response = await allocate(site, shelter, family, 3, expected_check_out="2025-04-10")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["shelter"]["beds_occupied"] == 3 and result["shelter"]["persons"] == 3
    assert result["warnings"] == []
    (event,) = await distributions_topic.wait_for(
        lambda r: r.data.get("allocation_id") == result["allocation"]["id"]
    )
    assert event.type == "ShelterAllocated" and event.key == family
    assert event.data["beds"] == 3 and event.data["expected_check_out"] == "2025-04-10"

    again = await allocate(site, shelter, family, 1)
    assert again.status_code == 409 and again.json()["type"].endswith("household-already-sheltered")
    full = await allocate(site, shelter, await site.household(size=3, needs=SHELTER_NEED), 3)
    assert full.status_code == 409
    assert (full.json()["type"], full.json()["beds_free"]) == ("urn:haven:problem:shelter-full", 2)
    unknown = await site.client.post(
        f"/v1/shelters/{uuid.uuid4()}/allocations",
        json={"household_id": family, "beds": 1, "check_in": "2025-03-10"},
        headers=site.operator,
    )
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("shelter-not-found")
    backwards = await allocate(site, shelter, family, 1, expected_check_out="2025-03-01")
    assert backwards.status_code == 422


async def test_check_out_frees_the_beds_once(site: Site, distributions_topic: TopicReader) -> None:
    shelter = await new_shelter(site, beds=2)
    family = await site.household(size=2, needs=SHELTER_NEED)
    allocation = (await allocate(site, shelter, family, 2)).json()["allocation"]
    url = f"/v1/shelters/{shelter['id']}/allocations/{allocation['id']}/check-out"
    released = await site.client.post(url, json={"reason": "moved"}, headers=site.operator)
    assert released.status_code == 200, released.text
    assert released.json()["shelter"]["beds_free"] == 2
    assert released.json()["allocation"]["release_reason"] == "moved"
    (event,) = await distributions_topic.wait_for(
        lambda r: r.type == "ShelterReleased" and r.data["allocation_id"] == allocation["id"]
    )
    assert (event.data["beds"], event.data["reason_code"], event.key) == (2, "moved", family)
    twice = await site.client.post(url, headers=site.operator)
    assert twice.status_code == 409 and twice.json()["type"].endswith("already-released")
    erased_reason = await site.client.post(
        url, json={"reason": "household_erased"}, headers=site.operator
    )
    assert erased_reason.status_code == 422  # a system reason, not an operator's
    active = await site.client.get(
        f"/v1/shelters/{shelter['id']}/allocations", headers=site.manager
    )
    assert active.json() == {"items": [], "next_cursor": None}
    every = await site.client.get(
        f"/v1/shelters/{shelter['id']}/allocations",
        params={"active": "false"},
        headers=site.manager,
    )
    assert [a["id"] for a in every.json()["items"]] == [allocation["id"]]
    assert (await allocate(site, shelter, family, 2)).status_code == 201


async def test_space_per_person_under_3_5_m2_is_flagged(site: Site) -> None:
    shelter = await new_shelter(site, beds=10, area="20")
    first = await allocate(site, shelter, await site.household(size=5, needs=SHELTER_NEED), 5)
    assert first.json()["shelter"]["space_per_person_m2"] == "4.00"
    assert first.json()["warnings"] == []
    second = await allocate(site, shelter, await site.household(size=1, needs=SHELTER_NEED), 1)
    assert second.status_code == 201
    assert second.json()["shelter"]["space_per_person_m2"] == "3.33"
    assert second.json()["shelter"]["below_minimum_space"] is True
    assert second.json()["warnings"] == ["space-per-person-below-minimum"]
    listed = await site.client.get(f"/v1/shelters/{shelter['id']}", headers=site.manager)
    assert listed.json()["below_minimum_space"] is True


async def test_concurrent_allocations_never_exceed_capacity(site: Site) -> None:
    capacity = 10
    shelter = await new_shelter(site, beds=capacity, area="500")
    households = [await site.household(size=1, needs=SHELTER_NEED) for _ in range(50)]
    responses = await asyncio.gather(*(allocate(site, shelter, h, 1) for h in households))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: capacity, 409: 50 - capacity}, statuses
    current = (await site.client.get(f"/v1/shelters/{shelter['id']}", headers=site.manager)).json()
    assert (current["beds_occupied"], current["beds_free"]) == (capacity, 0)

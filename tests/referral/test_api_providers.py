"""The provider directory over HTTP: roles, validation, duplicates, PATCH, HSDS round trip."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.auth import Role
from tests.referral.factories import (
    ADMIN,
    CASEWORKER,
    MANAGER,
    RunningApp,
    audit_records,
    auth,
    provider_body,
    running_app,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def app(infra) -> AsyncIterator[RunningApp]:
    async with running_app(infra) as running:
        yield running


async def test_admin_creates_reads_and_patches_a_provider(app: RunningApp) -> None:
    body = provider_body(services=["medical", "psychosocial"], regions=["MD01", "MD0101"])
    created = await app.client.post("/v1/providers", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    provider = created.json()
    assert provider["open_referrals"] == 0
    assert provider["services"] == ["medical", "psychosocial"]
    assert provider["contact"]["address"]["city"] == "Chișinău"

    for reader in (ADMIN, CASEWORKER, MANAGER):
        got = await app.client.get(f"/v1/providers/{provider['id']}", headers=reader)
        assert got.status_code == 200
        assert got.json()["name"] == body["name"]

    patched = await app.client.patch(
        f"/v1/providers/{provider['id']}",
        json={"capacity": 3, "languages": ["ro"], "active": False},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["capacity"] == 3
    assert patched.json()["languages"] == ["ro"]
    assert patched.json()["active"] is False
    assert patched.json()["name"] == body["name"]  # untouched
    actions = [r["action"] for r in await audit_records(app.engine, provider["id"])]
    assert actions == ["provider.create", "provider.update"]


async def test_roles(app: RunningApp) -> None:
    body = provider_body()
    assert (await app.client.post("/v1/providers", json=body)).status_code == 401
    for not_admin in (CASEWORKER, MANAGER, auth(Role.PROVIDER, org=str(uuid.uuid4()))):
        assert (
            await app.client.post("/v1/providers", json=body, headers=not_admin)
        ).status_code == 403
    assert (
        await app.client.get("/v1/providers", headers=auth(Role.FIELD_STAFF))
    ).status_code == 403
    assert (await app.client.get("/v1/providers/hsds", headers=CASEWORKER)).status_code == 403
    assert (
        await app.client.post("/v1/providers/hsds", json={"contents": []}, headers=MANAGER)
    ).status_code == 403


async def test_duplicate_name_or_id_is_409_so_demo_loading_is_repeatable(app: RunningApp) -> None:
    body = provider_body(id=str(uuid.uuid4()))
    assert (await app.client.post("/v1/providers", json=body, headers=ADMIN)).status_code == 201
    again = await app.client.post("/v1/providers", json=body, headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:haven:problem:provider-exists"
    shouting = provider_body(name=body["name"].upper())
    assert (await app.client.post("/v1/providers", json=shouting, headers=ADMIN)).status_code == 409
    other = provider_body()
    created = (await app.client.post("/v1/providers", json=other, headers=ADMIN)).json()
    rename = await app.client.patch(
        f"/v1/providers/{created['id']}", json={"name": body["name"]}, headers=ADMIN
    )
    assert rename.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"services": ["dentistry"]}, "services[0]"),
        ({"services": []}, "services"),
        ({"regions": ["md01"]}, "regions[0]"),
        ({"languages": ["ukr"]}, "languages[0]"),
        ({"capacity": -1}, "capacity"),
        ({"name": "Clinic\nInjected"}, "name"),
        ({"unknown": 1}, "unknown"),
        ({"services": ["medical", "medical"]}, "body"),
        ({"contact": {"phone": "call me"}}, "contact.phone"),
    ],
)
async def test_bad_provider_is_422_naming_the_field(
    app: RunningApp, change: dict[str, Any], field: str
) -> None:
    body = provider_body() | change
    response = await app.client.post("/v1/providers", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_patch_refuses_nulls_and_unknown_provider_is_404(app: RunningApp) -> None:
    created = (await app.client.post("/v1/providers", json=provider_body(), headers=ADMIN)).json()
    nulled = await app.client.patch(
        f"/v1/providers/{created['id']}", json={"capacity": None}, headers=ADMIN
    )
    assert nulled.status_code == 422
    missing = uuid.uuid4()
    for response in (
        await app.client.get(f"/v1/providers/{missing}", headers=ADMIN),
        await app.client.patch(f"/v1/providers/{missing}", json={"capacity": 1}, headers=ADMIN),
    ):
        assert response.status_code == 404
        assert response.json()["type"] == "urn:haven:problem:provider-not-found"
        assert str(missing) in response.json()["detail"]


async def test_list_filters_and_pages(app: RunningApp) -> None:
    region = f"MD{uuid.uuid4().int % 10**6:06d}"
    ids = []
    for _ in range(3):
        body = provider_body(services=["employment"], regions=[region])
        ids.append((await app.client.post("/v1/providers", json=body, headers=ADMIN)).json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"region": region, "service_type": "employment", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await app.client.get("/v1/providers", params=params, headers=CASEWORKER)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    bad = await app.client.get("/v1/providers", params={"cursor": "%%%"}, headers=ADMIN)
    assert bad.status_code == 400


def _without_timestamps(document: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(document)
    for org in clean["contents"]:
        for service in org["services"]:
            for capacity in service["capacities"]:
                capacity.pop("updated")
    return clean


async def test_hsds_round_trip(app: RunningApp, infra) -> None:
    exported = await app.client.get("/v1/providers/hsds", headers=ADMIN)
    assert exported.status_code == 200
    document = exported.json()
    assert document["total_items"] == len(document["contents"]) >= 5
    org = document["contents"][0]
    assert {"id", "name", "locations", "services"} <= set(org)
    service = org["services"][0]
    assert {"service_areas", "languages", "capacities", "attributes", "status"} <= set(service)
    assert service["capacities"][0]["unit"]["identifier"] == "referral_slot"

    async with running_app(infra) as other:
        imported = await other.client.post("/v1/providers/hsds", json=document, headers=ADMIN)
        assert imported.status_code == 200, imported.text
        result = imported.json()
        assert len(result["created"]) == len(document["contents"])
        assert result["updated"] == [] and result["skipped"] == []
        again = (await other.client.get("/v1/providers/hsds", headers=ADMIN)).json()
        assert _without_timestamps(again) == _without_timestamps(document)
        # importing the same document again updates, creates nothing
        second = (
            await other.client.post("/v1/providers/hsds", json=document, headers=ADMIN)
        ).json()
        assert second["created"] == [] and len(second["updated"]) == len(document["contents"])


async def test_hsds_export_is_paginated(app: RunningApp) -> None:
    """Issue #15, item 16: no list endpoint answers an unbounded list."""
    for _ in range(3):  # at least 3, whatever the other tests of the module added
        body = provider_body(services=["shelter"])
        assert (await app.client.post("/v1/providers", json=body, headers=ADMIN)).status_code == 201
    everything = (await app.client.get("/v1/providers/hsds", headers=ADMIN)).json()
    total = everything["total_items"]
    assert total >= 3
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await app.client.get("/v1/providers/hsds", params=params, headers=MANAGER)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if not cursor:
            break
    assert [p["page_number"] for p in pages] == list(range(1, len(pages) + 1))
    assert len(pages) == pages[0]["total_pages"] == -(-total // 2)
    assert all(p["size"] == len(p["contents"]) <= 2 for p in pages)
    assert [p["first_page"] for p in pages] == [True] + [False] * (len(pages) - 1)
    assert [p["last_page"] for p in pages] == [False] * (len(pages) - 1) + [True]
    ids = [org["id"] for p in pages for org in p["contents"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == total
    assert ids == [org["id"] for org in everything["contents"]] or total > 50
    for bad in ("garbage!", pages[0]["next_cursor"][:-4]):
        refused = await app.client.get("/v1/providers/hsds", params={"cursor": bad}, headers=ADMIN)
        assert refused.status_code == 400
    too_big = await app.client.get("/v1/providers/hsds", params={"limit": 201}, headers=ADMIN)
    assert too_big.status_code == 422


async def test_hsds_import_skips_foreign_services_and_refuses_bad_documents(
    app: RunningApp,
) -> None:
    org_id = str(uuid.uuid4())
    foreign = {
        "contents": [
            {
                "id": org_id,
                "name": f"Food bank {org_id[:8]}",
                "services": [
                    {"id": "s1", "name": "Food parcels", "status": "active"},
                    {
                        "id": "s2",
                        "name": "legal",
                        "status": "active",
                        "service_areas": [{"id": "a", "name": "MD02"}],
                        "languages": [{"code": "ro"}, {"code": "Romanian"}],
                        "capacities": [
                            {
                                "id": "c",
                                "unit": {"id": "u", "name": "cases"},
                                "available": 2,
                                "maximum": 4,
                                "updated": "2025-01-01T00:00:00Z",
                            }
                        ],
                    },
                ],
                "locations": [
                    {
                        "id": "l",
                        "location_type": "physical",
                        "addresses": [
                            {
                                "address_1": "Str. Mare 1",
                                "city": "Bălți",
                                "state_province": "Bălți",
                                "postal_code": "3100",
                                "country": "MD",
                                "address_type": "physical",
                            }
                        ],
                        "schedules": [{"id": "x", "description": "Tue 10-14"}],
                    }
                ],
            },
            {"id": str(uuid.uuid4()), "name": "No services here", "services": []},
        ]
    }
    result = await app.client.post("/v1/providers/hsds", json=foreign, headers=ADMIN)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["created"] == [org_id]
    reasons = sorted(s["reason"] for s in body["skipped"])
    assert reasons == ["no Haven service type", "not a Haven service type"]
    provider = (await app.client.get(f"/v1/providers/{org_id}", headers=ADMIN)).json()
    assert provider["services"] == ["legal"]
    assert provider["regions"] == ["MD02"]
    assert provider["languages"] == ["ro"]
    assert provider["capacity"] == 4
    assert provider["opening_hours"] == "Tue 10-14"
    assert provider["contact"]["address"]["city"] == "Bălți"

    before = (await app.client.get("/v1/providers", params={"limit": 200}, headers=ADMIN)).json()
    broken = copy.deepcopy(foreign)
    broken["contents"][0]["id"] = str(uuid.uuid4())
    broken["contents"][0]["name"] = "Fine"
    broken["contents"].append({"id": "not-a-uuid", "name": "x"})
    refused = await app.client.post("/v1/providers/hsds", json=broken, headers=ADMIN)
    assert refused.status_code == 422
    assert any("contents" in e["field"] for e in refused.json()["errors"])
    too_many = {"contents": [{"id": str(uuid.uuid4()), "name": "x"}] * 501}
    refused = await app.client.post("/v1/providers/hsds", json=too_many, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:haven:problem:too-many-organizations"
    twice = {"contents": [foreign["contents"][0], foreign["contents"][0]]}
    assert (
        await app.client.post("/v1/providers/hsds", json=twice, headers=ADMIN)
    ).status_code == 422
    after = (await app.client.get("/v1/providers", params={"limit": 200}, headers=ADMIN)).json()
    assert len(after["items"]) == len(before["items"])  # nothing half-written


async def test_demo_directory_loads_and_loading_twice_is_harmless(infra) -> None:
    from haven.demo import demo_requests

    requests = demo_requests("referral")
    assert len(requests) >= 5
    async with running_app(infra) as fresh:
        for attempt, expected in ((1, 201), (2, 409)):
            for request in requests:
                response = await fresh.client.request(
                    request["method"], request["path"], json=request["body"], headers=ADMIN
                )
                assert response.status_code == expected, (attempt, response.text)
        directory = (await fresh.client.get("/v1/providers", headers=CASEWORKER)).json()
        offered = {s for p in directory["items"] for s in p["services"]}
        assert {
            "medical",
            "legal",
            "counter_trafficking",
            "psychosocial",
            "voluntary_return",
        } <= offered

"""The documents say what the server does (issue 15, item 14: found by the contract fuzzer):
each test pins one defect class, the document's statement and the server's answer together."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.referral.factories import ADMIN, CASEWORKER, RunningApp, provider_body, running_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def app(infra) -> AsyncIterator[RunningApp]:
    async with running_app(infra) as running:
        yield running


async def _schemas(app: RunningApp) -> dict[str, Any]:
    document = (await app.client.get("/openapi.json")).json()
    return {"paths": document["paths"], **document["components"]["schemas"]}


async def test_provider_id_routes_do_not_catch_hsds(app: RunningApp) -> None:
    """`{provider_id:uuid}`: PATCH /providers/hsds is a 405 listing what the path allows, and
    the documented path is still `/v1/providers/{provider_id}`."""
    response = await app.client.patch("/v1/providers/hsds", json={}, headers=ADMIN)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert "/v1/providers/{provider_id}" in (await _schemas(app))["paths"]
    created = await app.client.post("/v1/providers", json=provider_body(), headers=ADMIN)
    upper = created.json()["id"].upper()
    assert (await app.client.get(f"/v1/providers/{upper}", headers=CASEWORKER)).status_code == 200


async def test_text_and_contact_rules_are_documented_and_counted_as_sent(app: RunningApp) -> None:
    schemas = await _schemas(app)
    contact = schemas["ProviderContact"]["properties"]
    assert all("pattern" in contact[name]["anyOf"][0] for name in ("phone", "email", "website"))
    assert "pattern" in schemas["ProviderCreate"]["properties"]["name"]
    assert schemas["ProviderCreate"]["properties"]["languages"]["uniqueItems"] is True
    refused: list[dict[str, Any]] = [
        {"contact": {"email": ""}},  # a pattern the document did not show
        {"contact": {"website": ""}},
        {"name": "\u008e"},  # a C1 control character
        {
            "contact": {
                "address": {"address_1": "a", "city": "b", "country": "MD", "postal_code": " " * 21}
            }
        },
        {"languages": ["ro", "ro"]},
        {"active": 0},
        {"capacity": "5"},
    ]
    for change in refused:
        response = await app.client.post(
            "/v1/providers", json=provider_body(**change), headers=ADMIN
        )
        assert response.status_code == 422, (change, response.text)
    padded = provider_body(name="  Padded  ", contact={"email": " a@b.md "}, capacity=4.0)
    created = await app.client.post("/v1/providers", json=padded, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Padded"
    assert created.json()["contact"]["email"] == "a@b.md"
    assert created.json()["capacity"] == 4


async def test_patch_documents_no_null_and_refuses_it(app: RunningApp) -> None:
    properties = (await _schemas(app))["ProviderUpdate"]["properties"]
    assert all("anyOf" not in p and "default" not in p for p in properties.values())
    created = await app.client.post("/v1/providers", json=provider_body(), headers=ADMIN)
    url = f"/v1/providers/{created.json()['id']}"
    for change in ({"contact": None}, {"regions": ["MD01", "MD01"]}):
        response = await app.client.patch(url, json=change, headers=ADMIN)
        assert response.status_code == 422, (change, response.text)


async def test_override_reason_rule_is_in_the_document(app: RunningApp) -> None:
    schema = (await _schemas(app))["ReferralCreate"]
    assert schema["if"]["properties"]["consent_override"] == {"const": True}
    assert schema["then"]["required"] == ["override_reason"]
    assert schema["else"]["properties"]["override_reason"] == {"type": "null"}
    body = {
        "household_id": str(uuid.uuid4()),
        "service_type": "medical",
        "reason": "needs care",
        "override_reason": "because",
    }
    response = await app.client.post("/v1/referrals", json=body, headers=CASEWORKER)
    assert response.status_code == 422, response.text


async def test_hsds_import_body_is_documented(app: RunningApp) -> None:
    post = (await _schemas(app))["paths"]["/v1/providers/hsds"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["contents"]
    assert schema["properties"]["contents"]["items"]["required"] == ["id", "name"]
    response = await app.client.post("/v1/providers/hsds", json={}, headers=ADMIN)
    assert response.status_code == 422

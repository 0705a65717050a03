"""A registration with a medical need and referral-sharing consent becomes a referral sent to
the provider that serves the region, which the provider accepts."""

from __future__ import annotations

import uuid

from tests.e2e.flows import ADMIN, create_site, household_body, register
from tests.e2e.stack import Role, Stack, token
from tests.support import eventually


async def test_a_medical_need_is_referred_to_the_right_provider_who_accepts(stack: Stack) -> None:
    referral = stack["referral"]
    provider = await referral.post(
        "/v1/providers",
        json={
            "name": f"Clinic {uuid.uuid4().hex[:6]}",
            "services": ["medical"],
            "regions": ["MD0101"],
            "languages": ["uk", "ro"],
            "capacity": 5,
            "contact": {
                "phone": "+37322000000",
                "email": "intake@clinic.example",
                "address": {
                    "address_1": "Str. Ștefan cel Mare 1",
                    "city": "Chișinău",
                    "country": "MD",
                },
            },
            "opening_hours": "Mo-Fr 08:00-17:00",
        },
        headers=ADMIN,
    )
    assert provider.status_code == 201, provider.text
    provider_id = provider.json()["id"]

    site = await create_site(stack)
    household = await register(
        stack,
        site,
        household_body(
            site,
            given="Ірина",
            family="Коваль",
            referral_sharing=True,
            needs=[{"type": "medical_care", "priority": "urgent"}],
        ),
    )
    caseworker = token(Role.CASEWORKER, sites=(site,))
    found: dict[str, object] = {}

    async def referred() -> bool:
        response = await referral.get(
            "/v1/referrals", params={"household_id": household["id"]}, headers=caseworker
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items and items[0]["status"] == "sent":
            found.update(items[0])
        return bool(found)

    await eventually(referred, timeout=60, what="an automatic referral sent to a provider")
    assert found["service_type"] == "medical"
    assert found["urgency"] == "urgent"
    assert found["provider_id"] == provider_id

    provider_staff = token(Role.PROVIDER, sites=(), org=provider_id, sub="clinic-intake")
    accepted = await referral.post(f"/v1/referrals/{found['id']}/accept", headers=provider_staff)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"

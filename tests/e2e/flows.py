"""Building blocks of cross-service scenarios, each through the services' public APIs."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.stack import Role, Stack, token
from tests.support import eventually

ADMIN = token(Role.ADMIN)


async def create_site(stack: Stack) -> str:
    site = "MDA-" + uuid.uuid4().hex[:3].upper()
    response = await stack["registration"].post(
        "/v1/sites",
        json={
            "id": site,
            "name": f"Site {site}",
            "country": "MDA",
            "admin1": "MD01",
            "admin2": "MD0101",
            "timezone": "Europe/Chisinau",
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return site


def household_body(
    site: str,
    *,
    given: str,
    family: str,
    needs: list[dict[str, str]] | None = None,
    vulnerabilities: list[str] | None = None,
    referral_sharing: bool = False,
    phone: str | None = None,
    contact: bool = False,
    language: str = "uk",
    document: str | None = None,
) -> dict[str, Any]:
    member: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "sex": "female",
        "date_of_birth": "1984-05-17",
        "relationship": "head",
        "nationality": "UKR",
        "documents": [{"type": "passport", "number": document, "issuing_country": "UKR"}]
        if document
        else [],
        "vulnerabilities": vulnerabilities or [],
    }
    body: dict[str, Any] = {
        "site_id": site,
        "location": {"admin1": "MD01", "admin2": "MD0101", "settlement": "Chișinău"},
        "displacement_status": "refugee",
        "arrival_date": "2026-11-01",
        "preferred_language": language,
        "consent": {
            "data_processing": True,
            "referral_sharing": referral_sharing,
            "contact": contact,
        },
        "members": [
            member,
            {
                **member,
                "given_name": "Марія",
                "date_of_birth": "2015-02-02",
                "relationship": "child",
                "documents": [],
                "vulnerabilities": [],
            },
        ],
        "needs": needs or [],
    }
    if phone:
        body["phone"] = phone
    return body


async def register(stack: Stack, site: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await stack["registration"].post(
        "/v1/households",
        json=body,
        headers={**token(Role.FIELD_STAFF, sites=(site,)), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def until_ok(
    stack: Stack, service: str, path: str, headers: dict[str, str], what: str
) -> dict[str, Any]:
    """GET ``path`` until it answers 200 (an event has not arrived yet until then)."""
    found: dict[str, Any] = {}

    async def ok() -> bool:
        response = await stack[service].get(path, headers=headers)
        if response.status_code == 200:
            found.update(response.json())
        return response.status_code == 200

    await eventually(ok, timeout=60, interval=0.25, what=what)
    return found

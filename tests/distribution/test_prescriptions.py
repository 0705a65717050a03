"""Medication only against the household's own prescription (issue #15 item 16): a reference
must be in this service's prescription register and recorded for the household served; a
merge moves the references to the survivor (tests/distribution/test_households.py), an erasure
deletes them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.distribution.models import ItemCategory
from shared.auth import Role
from tests.distribution.support import Site
from tests.support.tokens import auth_headers


async def medicine(site: Site) -> str:
    return await site.stocked(ItemCategory.MEDICATION, 50, batch="RX-B", expires_on="2026-06-30")


def line(sku: str, reference: str, quantity: int = 2) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "prescription_reference": reference}


async def test_an_unknown_reference_is_a_422_and_nothing_is_given(site: Site) -> None:
    sku, household = await medicine(site), await site.household()
    refused = await site.distribute(household, [line(sku, f"RX-MADE-UP-{uuid.uuid4().hex[:6]}")])
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:haven:problem:unknown-prescription-reference"
    assert refused.json()["lines"] == [{"line": 0, "sku": sku}]
    assert (await site.stock())[sku]["on_hand"] == 50


async def test_another_households_reference_is_a_409(site: Site) -> None:
    sku = await medicine(site)
    mine, theirs = await site.household(), await site.household()
    reference = await site.prescribed(theirs)
    refused = await site.distribute(mine, [line(sku, reference)])
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:haven:problem:prescription-of-another-household"
    assert str(theirs) not in refused.text
    assert (await site.distribute(theirs, [line(sku, reference)])).status_code == 201


async def test_a_reference_belongs_to_one_household(site: Site) -> None:
    first, second = await site.household(), await site.household()
    reference = f"RX-{uuid.uuid4().hex[:8]}"
    created = await site.prescription(first, reference)
    assert created.status_code == 201
    assert created.json()["reference"] == reference and created.json()["household_id"] == first
    again = await site.prescription(first, reference)  # a re-send: the stored record
    assert again.status_code == 201 and again.json() == created.json()
    taken = await site.prescription(second, reference)
    assert taken.status_code == 409
    assert taken.json()["type"] == "urn:haven:problem:prescription-reference-taken"
    assert first not in taken.text


@pytest.mark.parametrize(
    ("role", "sites", "status"),
    [
        (Role.WAREHOUSE_OPERATOR, "mine", 403),
        (Role.FIELD_STAFF, "mine", 403),
        (Role.PROVIDER, "mine", 201),
        (Role.MANAGER, "elsewhere", 404),
    ],
)
async def test_who_records_a_prescription(site: Site, role: Role, sites: str, status: int) -> None:
    household = await site.household()
    headers = auth_headers(role, sites=[site.site_id if sites == "mine" else "ELSEWHERE"])
    response = await site.client.post(
        f"/v1/households/{household}/prescriptions",
        json={"reference": f"RX-{uuid.uuid4().hex[:8]}"},
        headers=headers,
    )
    assert response.status_code == status, response.text
    if status == 404:  # the same answer as for a household that does not exist
        assert response.json()["type"] == "urn:haven:problem:household-not-known-yet"


async def test_a_prescription_for_an_unknown_household_or_a_bad_reference_is_refused(
    site: Site,
) -> None:
    unknown = await site.prescription(str(uuid.uuid4()), "RX-1")
    assert unknown.status_code == 404
    bad = await site.prescription(await site.household(), "RX\n1")
    assert bad.status_code == 422

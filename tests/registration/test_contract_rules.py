"""The request document says what the validators refuse (issue 15, item 14: found by the
contract fuzzer), and the validators refuse what the document does not allow."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from pydantic import BaseModel, ValidationError

from services.registration.models import (
    ConsentIn,
    HouseholdUpdate,
    MemberCreate,
    MemberUpdate,
    NeedsUpdate,
    ResolveRequest,
    SiteCreate,
)
from shared.auth import Role
from tests.registration.factories import member
from tests.registration.support import Service

SITE = {
    "id": "MDA-OCN",
    "name": "Ocnița",
    "country": "MDA",
    "admin1": "MD26",
    "timezone": "Europe/Chisinau",
}
MERGE_INTO = "e3e70682-c209-1cac-a29f-6fbed82c07cd"


def _documented(model: type[BaseModel], body: dict[str, Any]) -> bool:
    # The fuzzer's validating engine: Unicode-aware regexes (\p{L}), as the document needs.
    return bool(jsonschema_rs.validator_for(model.model_json_schema()).is_valid(body))


def _accepted(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


CASES: list[tuple[type[BaseModel], dict[str, Any], bool]] = [
    # A name needs a letter; digits and symbols are refused; Devanagari's spacing marks are not.
    (MemberUpdate, {"given_name": "0"}, False),
    (MemberUpdate, {"given_name": "Anna-Maria"}, True),
    (MemberUpdate, {"given_name": "राम"}, True),
    # Codes are the ISO lists they are checked against; Postgres' unknown "localtime" is not one.
    (MemberUpdate, {"nationality": ""}, False),
    (MemberUpdate, {"nationality": "UKR"}, True),
    (SiteCreate, SITE, True),
    (SiteCreate, SITE | {"timezone": "localtime"}, False),
    (SiteCreate, SITE | {"country": "XXA"}, False),
    (SiteCreate, SITE | {"id": ""}, False),
    (SiteCreate, SITE | {"name": "tab\there"}, False),
    # What cannot be removed does not document null; an empty change is refused.
    (HouseholdUpdate, {"location": None}, False),
    (HouseholdUpdate, {}, False),
    (HouseholdUpdate, {"phone": None}, True),
    (MemberUpdate, {"sex": None}, False),
    (MemberUpdate, {"family_name": None}, True),
    (MemberUpdate, {"former_head_relationship": "child"}, False),
    (MemberUpdate, {"former_head_relationship": "child", "relationship": "head"}, True),
    (MemberUpdate, {"former_head_relationship": "head", "relationship": "head"}, False),
    # Each need once.
    (NeedsUpdate, {"needs": [{"type": "food"}, {"type": "food", "priority": "high"}]}, False),
    (NeedsUpdate, {"needs": [{"type": "food"}, {"type": "shelter"}]}, True),
    # merge needs merge_into, not_duplicate has none.
    (ResolveRequest, {"action": "merge", "merge_into": None}, False),
    (ResolveRequest, {"action": "merge", "merge_into": MERGE_INTO}, True),
    (ResolveRequest, {"action": "not_duplicate", "merge_into": MERGE_INTO}, False),
    (ResolveRequest, {"action": "not_duplicate"}, True),
    # One age: a birth date or an estimate.
    (MemberCreate, member(), True),
    (MemberCreate, member() | {"estimated_age": 30}, False),
    # Consent: data processing is agreed, booleans are booleans, times are not numbers.
    (ConsentIn, {"data_processing": False}, False),
    (ConsentIn, {"data_processing": True, "contact": 0}, False),
    (ConsentIn, {"data_processing": True, "given_at": 0}, False),
    (ConsentIn, {"data_processing": True, "given_at": "2025-03-01T10:00:00+02:00"}, True),
]


@pytest.mark.parametrize(("model", "body", "valid"), CASES)
def test_the_document_and_the_validators_agree(
    model: type[BaseModel], body: dict[str, Any], valid: bool
) -> None:
    assert _documented(model, body) is valid
    assert _accepted(model, body) is valid


async def test_a_report_date_is_a_date_not_a_unix_timestamp(service: Service) -> None:
    headers = service.headers(Role.MANAGER)
    for query in ({"to": "0"}, {"from": "1700000000"}):
        response = await service.client.get(
            "/v1/reports/households.csv", params=query, headers=headers
        )
        assert response.status_code == 422, query
    response = await service.client.get(
        "/v1/reports/households.csv", params={"to": "2030-01-01"}, headers=headers
    )
    assert response.status_code == 200

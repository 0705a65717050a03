"""Idempotent intake: a tablet that re-sends never registers a household twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from services.registration.domain import idempotency
from shared.auth import Role
from shared.db import session_factory
from tests.registration.factories import household, member
from tests.registration.support import Service


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def households_with(service: Service, given_name: str) -> int:
    return int(
        await service.scalar(
            "SELECT count(DISTINCT household_id) FROM household_member WHERE given_name = :n",
            n=given_name,
        )
    )


async def test_the_same_key_and_body_answer_the_same_and_register_once(
    service: Service,
) -> None:
    body = household(member())
    headers = service.field | key()
    first = await service.client.post("/v1/households", json=body, headers=headers)
    second = await service.client.post("/v1/households", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert await households_with(service, body["members"][0]["given_name"]) == 1
    # the replay is no new registration: one HouseholdRegistered only
    await asyncio.sleep(0.5)
    records = await service.topics.for_household(first.json()["id"])
    assert [r.type for r in records] == ["HouseholdRegistered"]


async def test_the_same_key_with_another_body_is_refused(service: Service) -> None:
    headers = service.field | key()
    body = household(member())
    assert (
        await service.client.post("/v1/households", json=body, headers=headers)
    ).status_code == 201
    other = household(member())
    response = await service.client.post("/v1/households", json=other, headers=headers)
    assert response.status_code == 409
    assert response.json()["type"] == "urn:haven:problem:idempotency-key-reused"
    assert await households_with(service, other["members"][0]["given_name"]) == 0


async def test_keys_belong_to_the_caller(service: Service) -> None:
    shared_key = key()
    body = household(member())
    mine = await service.client.post(
        "/v1/households",
        json=body,
        headers=service.headers(Role.FIELD_STAFF, sub="ana") | shared_key,
    )
    theirs = await service.client.post(
        "/v1/households",
        json=body,
        headers=service.headers(Role.FIELD_STAFF, sub="ion") | shared_key,
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_concurrent_resends_register_one_household(service: Service) -> None:
    body = household(member())
    headers = service.field | key()
    responses = await asyncio.gather(
        *(service.client.post("/v1/households", json=body, headers=headers) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await households_with(service, body["members"][0]["given_name"]) == 1


async def test_a_refused_request_does_not_use_up_its_key(service: Service) -> None:
    headers = service.field | key()
    invalid = household(member())
    invalid["displacement_status"] = "tourist"
    assert (
        await service.client.post("/v1/households", json=invalid, headers=headers)
    ).status_code == 422
    valid = household(member())
    assert (
        await service.client.post("/v1/households", json=valid, headers=headers)
    ).status_code == 201


async def test_a_key_must_be_short_visible_ascii(service: Service) -> None:
    for bad in ("x" * 201, "two words", "cl\xc3\xa9".encode("latin-1")):
        response = await service.client.post(
            "/v1/households",
            json=household(member()),
            headers=service.field | {"Idempotency-Key": bad},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_keys_expire(service: Service) -> None:
    body = household(member())
    headers = service.field | key()
    first = await service.client.post("/v1/households", json=body, headers=headers)
    service.clock.advance(timedelta(hours=73))
    try:
        later = await service.client.post("/v1/households", json=body, headers=headers)
        assert later.status_code == 201
        assert later.json()["id"] != first.json()["id"]  # the expired key was taken over
        async with session_factory(service.engine)() as session, session.begin():
            purged = await idempotency.purge_expired(
                session=session, now=service.clock() + timedelta(hours=73)
            )
        assert purged >= 1
    finally:
        service.clock.advance(timedelta(hours=-73))


async def test_a_key_whose_household_was_erased_answers_gone(service: Service) -> None:
    body = household(member())
    headers = service.field | key()
    first = await service.client.post("/v1/households", json=body, headers=headers)
    erased = await service.client.delete(
        f"/v1/households/{first.json()['id']}", headers=service.admin
    )
    assert erased.status_code == 204
    again = await service.client.post("/v1/households", json=body, headers=headers)
    assert again.status_code == 410
    assert again.json()["type"] == "urn:haven:problem:household-erased"

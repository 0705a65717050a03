"""Erasure at the person's request: personal data gone from every table of this service,
HouseholdErased on the topic, the contact card tombstoned."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa

from shared.auth import Role
from shared.events.catalog import AUDIT, CONTACTS
from tests.registration.factories import household, member, passport, random_name, random_phone
from tests.registration.support import Service
from tests.support.topics import Record


async def tables_and_columns(service: Service) -> list[tuple[str, str, str]]:
    return [
        (table, column, data_type)
        for table, column, data_type in await service.rows(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, column_name"
        )
    ]


async def where_is(service: Service, needle: str) -> list[str]:
    """Every table.column of the service's database that holds ``needle`` (any type)."""
    found = []
    async with service.engine.connect() as conn:
        for table, column, data_type in await tables_and_columns(service):
            if data_type == "bytea":
                condition = f"position(convert_to(:needle, 'UTF8') in \"{column}\") > 0"
            else:
                condition = f"lower(CAST(\"{column}\" AS text)) LIKE '%' || lower(:needle) || '%'"
            hits = await conn.scalar(
                sa.text(f'SELECT count(*) FROM "{table}" WHERE {condition}'), {"needle": needle}
            )
            if hits:
                found.append(f"{table}.{column}")
    return found


async def test_erasure_leaves_no_personal_value_anywhere(service: Service) -> None:
    given, family, child_name = random_name(), random_name(), random_name()
    phone = random_phone()
    document = "ZX" + uuid.uuid4().hex[:7].upper()
    born = "1933-03-13"
    settlement = f"Satul {random_name()}"
    body = household(
        member(
            given,
            family,
            date_of_birth=born,
            documents=[passport(document)],
            vulnerabilities=["survivor_of_gbv"],
        ),
        member(child_name, family, relationship="child", estimated_age=9),
        phone=phone,
        contact=True,
    )
    body["location"]["settlement"] = settlement
    registered = await service.client.post(
        "/v1/households", json=body, headers=service.field | {"Idempotency-Key": "erase-me-1"}
    )
    hid = registered.json()["id"]
    # a second registration of the same people, waiting in the review queue
    duplicate = await service.register(household(*body["members"], phone=phone))
    assert duplicate["status"] == "pending_review"
    bystander_name = random_name()
    await service.register(household(member(bystander_name)))
    await service.topics.for_household(hid, topic=CONTACTS.name)

    personal = [given, family, child_name, phone, document, born, settlement]
    keys = await service.rows(
        "SELECT given_key, family_key, name_key FROM household_member WHERE household_id = :id",
        id=uuid.UUID(hid),
    )
    personal += [k for row in keys for k in row]
    assert await where_is(service, given)  # the scan does find what is there
    bystander_columns = await where_is(service, bystander_name)
    assert "household_member.given_name" in bystander_columns

    for household_id in (hid, duplicate["id"]):
        response = await service.client.delete(
            f"/v1/households/{household_id}", headers=service.admin
        )
        assert response.status_code == 204

    leftovers = {value: await where_is(service, value) for value in personal}
    assert leftovers == {value: [] for value in personal}
    assert await where_is(service, bystander_name) == bystander_columns  # only theirs went

    tombstone = await service.rows(
        "SELECT case_number, site_id, status, version, phone, admin1, needs "
        "FROM household WHERE id = :id",
        id=uuid.UUID(hid),
    )
    assert tombstone == [(registered.json()["case_number"], "MDA-CHI", "erased", 2, None, None, [])]
    review_status = await service.scalar(
        "SELECT resolution FROM duplicate_review WHERE household_id = :id",
        id=uuid.UUID(duplicate["id"]),
    )
    assert review_status == "household_erased"

    records = await service.topics.for_household(hid, count=2)
    assert [r.type for r in records] == ["HouseholdRegistered", "HouseholdErased"]
    assert records[1].data == {"household_id": hid, "site_id": "MDA-CHI"}
    cards = await service.topics.for_household(hid, count=2, topic=CONTACTS.name)
    assert cards[0].data["phone"] == phone
    assert cards[1].value is None and cards[1].key == hid  # the tombstone erases the card
    await service.topics.wait_for(
        lambda r: (
            r.topic == AUDIT.name
            and r.value is not None
            and r.data["resource_id"] == hid
            and r.data["action"] == "household.erase"
            and r.data["actor_role"] == "admin"
        )
    )


async def test_an_erased_household_is_gone_for_everyone(service: Service) -> None:
    name = random_name()
    result = await service.register(household(member(name)))
    assert (
        await service.client.delete(f"/v1/households/{result['id']}", headers=service.admin)
    ).status_code == 204
    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.ADMIN):
        response = await service.get(result["id"], service.headers(role))
        assert response.status_code == 410, role
        assert response.json()["type"] == "urn:haven:problem:household-erased"
    search = await service.client.get("/v1/households", params={"q": name}, headers=service.admin)
    assert search.json()["items"] == []
    again = await service.client.delete(f"/v1/households/{result['id']}", headers=service.admin)
    assert again.status_code == 410
    change = await service.client.patch(
        f"/v1/households/{result['id']}",
        json={"preferred_language": "ro"},
        headers=service.admin | {"If-Match": 'W/"2"'},
    )
    assert change.status_code == 410


async def test_only_admins_erase(service: Service) -> None:
    result = await service.register(household(member()))
    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER):
        response = await service.client.delete(
            f"/v1/households/{result['id']}", headers=service.headers(role)
        )
        assert response.status_code == 403, role
    assert (await service.get(result["id"])).status_code == 200
    unknown = await service.client.delete(
        "/v1/households/01900000-0000-7000-8000-000000000000", headers=service.admin
    )
    assert unknown.status_code == 404


async def test_erasure_reaches_every_household_merged_into_the_erased_one(
    service: Service,
) -> None:
    """A <- B <- C: C merged into B, then B into A. Erasing A erases B and C too: their own
    names, documents and phones (members of theirs that A never had) are gone and cannot be
    found, and every service hears HouseholdErased for each."""
    head = member(date_of_birth="1944-04-04")
    a = await service.register(household(head))
    own: dict[str, list[str]] = {}
    ids: dict[str, str] = {}
    for label in ("B", "C"):
        name, phone = random_name(), random_phone()
        document = "MG" + uuid.uuid4().hex[:7].upper()
        body = household(
            head,
            member(name, relationship="child", estimated_age=7, documents=[passport(document)]),
            phone=phone,
            contact=True,
        )
        result = await service.register(body)
        assert result["status"] == "pending_review"
        ids[label], own[label] = result["id"], [name, document, phone]
    queue = await service.client.get("/v1/duplicates", params={"limit": 200}, headers=service.admin)
    reviews = {r["household_id"]: r["id"] for r in queue.json()["items"]}
    for merged, survivor in ((ids["C"], ids["B"]), (ids["B"], a["id"])):
        response = await service.client.post(
            f"/v1/duplicates/{reviews[merged]}/resolve",
            json={"action": "merge", "merge_into": survivor},
            headers=service.supervisor,
        )
        assert response.status_code == 200, response.text
    for values in own.values():
        assert await where_is(service, values[0])  # still there before the erasure

    response = await service.client.delete(f"/v1/households/{a['id']}", headers=service.admin)
    assert response.status_code == 204

    for label, values in own.items():
        assert {v: await where_is(service, v) for v in values} == {v: [] for v in values}, label
        for value in values:
            search = await service.client.get(
                "/v1/households", params={"q": value}, headers=service.admin
            )
            assert search.json()["items"] == [], (label, value)
        assert (await service.get(ids[label])).status_code == 410
    for household_id in (a["id"], ids["B"], ids["C"]):
        [erased] = await service.topics.wait_for(erasure_of(household_id))
        assert erased.data == {"household_id": household_id, "site_id": "MDA-CHI"}
    for household_id in (ids["B"], ids["C"]):
        cards = await service.topics.for_household(household_id, count=3, topic=CONTACTS.name)
        assert cards[-1].value is None  # the contact card's tombstone, again at erasure
        [audited] = await service.topics.wait_for(audit_of(household_id, "household.erase"))
        assert audited.data["reason"] == "merged_into_erased"


def erasure_of(household_id: str) -> Callable[[Record], bool]:
    def match(record: Record) -> bool:
        return (
            record.key == household_id
            and record.value is not None
            and record.type == "HouseholdErased"
        )

    return match


def audit_of(household_id: str, action: str) -> Callable[[Record], bool]:
    def match(record: Record) -> bool:
        return (
            record.topic == AUDIT.name
            and record.value is not None
            and record.data["resource_id"] == household_id
            and record.data["action"] == action
        )

    return match

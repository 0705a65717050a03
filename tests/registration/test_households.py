"""Households over HTTP: intake, reads, changes with ETags, members, needs, deactivation —
for every role, with the events checked on the real topics."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

import pytest

from shared.auth import Role
from shared.events.catalog import AUDIT, CONTACTS, HOUSEHOLDS
from tests.registration.factories import (
    household,
    member,
    passport,
    random_name,
    random_phone,
)
from tests.registration.support import Service
from tests.support.topics import Record

READERS = (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.ADMIN)


def event_types(records: list[Record]) -> list[str | None]:
    return [r.type for r in records]


async def etag_of(service: Service, household_id: str) -> str:
    response = await service.get(household_id)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


# --- intake --------------------------------------------------------------------------------


async def test_field_staff_registers_a_household_and_it_is_announced(service: Service) -> None:
    head = member(
        "Олена",
        "Бондар",
        sex="female",
        date_of_birth="1979-05-17",
        nationality="UKR",
        documents=[passport("FA445566")],
        vulnerabilities=["single_caregiver"],
    )
    child = member(
        "Марія", "Бондар", date_of_birth="2019-02-03", relationship="child", nationality="UKR"
    )
    phone = random_phone()
    body = household(
        head,
        child,
        phone=phone,
        contact=True,
        referral_sharing=True,
        needs=[{"type": "shelter", "priority": "urgent"}, {"type": "food"}],
    )
    response = await service.client.post("/v1/households", json=body, headers=service.field)

    assert response.status_code == 201, response.text
    result = response.json()
    assert result["status"] == "active"
    assert result["possible_duplicates"] == []
    assert result["case_number"].startswith("MDA-CHI-")
    assert response.headers["Location"] == f"/v1/households/{result['id']}"
    assert response.headers["ETag"] == 'W/"1"'

    [registered] = await service.topics.for_household(result["id"])
    assert registered.type == "HouseholdRegistered"
    assert registered.headers["ce_actor"] == "field_staff-tester"
    profile = registered.data
    assert profile["household_size"] == 2
    assert profile["status"] == "active"
    assert profile["location"] == {"admin1": "MD01", "admin2": "MD0101"}
    assert profile["preferred_language"] == "uk"
    assert profile["consent"] == {
        "data_processing": True,
        "referral_sharing": True,
        "contact": True,
    }
    assert profile["needs"] == [
        {"type": "shelter", "priority": "urgent"},
        {"type": "food", "priority": "normal"},
    ]
    members = {m["age_band"]: m for m in profile["members"]}
    assert members["18-59"]["is_head"] and members["18-59"]["sex"] == "female"
    assert members["18-59"]["vulnerabilities"] == ["single_caregiver"]
    assert members["5-17"]["is_head"] is False
    # pseudonymous: no names, documents, birth dates or phone anywhere in the event
    for secret in ("Олена", "Бондар", "FA445566", "1979-05-17", phone, "Chișinău"):
        assert secret.encode() not in registered.value  # type: ignore[operator]

    [contact] = await service.topics.for_household(result["id"], topic=CONTACTS.name)
    assert contact.type == "HouseholdContact"
    assert contact.data == {
        "household_id": result["id"],
        "case_number": result["case_number"],
        "site_id": "MDA-CHI",
        "phone": phone,
        "preferred_language": "uk",
        "contact_consent": True,
    }
    await service.topics.wait_for(
        lambda r: (
            r.topic == AUDIT.name
            and r.value is not None
            and r.data["resource_id"] == result["id"]
            and r.data["action"] == "household.register"
        )
    )


async def test_registrations_are_counted_by_site_and_status(service: Service) -> None:
    await service.register(household(member()))
    metrics = (await service.client.get("/metrics")).text
    assert 'haven_registration_households_registered_total{site="MDA-CHI",status="active"}' in (
        metrics
    )


async def test_without_contact_consent_no_contact_details_leave(service: Service) -> None:
    result = await service.register(household(member(), phone=random_phone(), contact=False))
    await service.topics.for_household(result["id"])  # the registration itself arrived
    assert (
        service.topics.matching(lambda r: r.topic == CONTACTS.name and r.key == result["id"]) == []
    )


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.MANAGER, Role.PROVIDER])
async def test_only_field_staff_and_admins_register(service: Service, role: Role) -> None:
    response = await service.client.post(
        "/v1/households", json=household(member()), headers=service.headers(role)
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:haven:problem:forbidden"


async def test_registration_needs_a_token(service: Service) -> None:
    response = await service.client.post("/v1/households", json=household(member()))
    assert response.status_code == 401


async def test_field_staff_register_only_at_their_own_sites(service: Service) -> None:
    body = household(member(), site_id="MDA-PAL")
    refused = await service.client.post("/v1/households", json=body, headers=service.field)
    assert refused.status_code == 404
    allowed = await service.client.post(
        "/v1/households",
        json=body,
        headers=service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"]),
    )
    assert allowed.status_code == 201
    assert allowed.json()["case_number"].startswith("MDA-PAL-")
    admin = await service.client.post("/v1/households", json=body, headers=service.admin)
    assert admin.status_code == 201


async def test_an_unknown_site_is_an_invalid_field(service: Service) -> None:
    response = await service.client.post(
        "/v1/households", json=household(member(), site_id="MDA-NOP"), headers=service.admin
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "site_id",
            "message": "there is no registration site MDA-NOP",
            "type": "unknown_site",
        }
    ]


# --- bad input -----------------------------------------------------------------------------


async def count_households(service: Service) -> int:
    return int(await service.scalar("SELECT count(*) FROM household"))


async def test_every_invalid_field_is_listed_and_nothing_is_written(service: Service) -> None:
    before = await count_households(service)
    body = household(
        member(given="Ana3", sex="woman", date_of_birth="2999-01-01", nationality="MOLDOVA"),
        member(relationship="cousin", estimated_age=130),
        phone="069123456",
    )
    body["consent"]["data_processing"] = False
    body["preferred_language"] = "moldovan"
    body["needs"] = [{"type": "food"}, {"type": "food"}]
    body["favourite_colour"] = "blue"
    response = await service.client.post("/v1/households", json=body, headers=service.field)

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:haven:problem:validation-failed"
    errors = {e["field"]: e["message"] for e in problem["errors"]}
    assert set(errors) == {
        "members[0].given_name",
        "members[0].sex",
        "members[0].date_of_birth",
        "members[0].nationality",
        "members[1].relationship",
        "members[1].estimated_age",
        "phone",
        "consent.data_processing",
        "preferred_language",
        "needs",
        "favourite_colour",
    }
    assert errors["favourite_colour"] == "unknown field"
    assert errors["members[0].date_of_birth"] == "must not be in the future"
    assert "agree to data processing" in errors["consent.data_processing"]
    assert await count_households(service) == before


@pytest.mark.parametrize("heads", [0, 2])
async def test_a_household_has_exactly_one_head(service: Service, heads: int) -> None:
    members = [member(relationship="head" if i < heads else "child") for i in range(3)]
    response = await service.client.post(
        "/v1/households", json=household(*members), headers=service.field
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "members"
    assert f"exactly one member with relationship 'head' (found {heads})" in error["message"]


async def test_a_member_has_a_birth_date_or_an_estimated_age(service: Service) -> None:
    both = member(estimated_age=40)
    both["date_of_birth"] = "1985-01-01"
    neither = member(relationship="child")
    del neither["date_of_birth"]
    response = await service.client.post(
        "/v1/households", json=household(both, neither), headers=service.field
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"members[0]", "members[1]"}


async def test_documents_are_validated(service: Service) -> None:
    same_twice = [passport("MD 0099"), passport("md-0099")]
    response = await service.client.post(
        "/v1/households",
        json=household(
            member(documents=same_twice),
            member(relationship="child", documents=[passport("--"), {"type": "visa"}]),
        ),
        headers=service.field,
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "members[0].documents",
        "members[1].documents[0].number",
        "members[1].documents[1].type",
        "members[1].documents[1].number",
        "members[1].documents[1].issuing_country",
    }


async def test_control_characters_are_refused_and_text_is_stored_as_nfc(
    service: Service,
) -> None:
    refused = await service.client.post(
        "/v1/households",
        json=household(member(given="Ana\tMaria")),
        headers=service.field,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "members[0].given_name"

    decomposed = unicodedata.normalize("NFD", "Ștefan")
    result = await service.register(household(member(given=decomposed)))
    stored = await service.scalar(
        "SELECT given_name FROM household_member WHERE household_id = :id", id=result["id"]
    )
    assert stored == unicodedata.normalize("NFC", "Ștefan") != decomposed


async def test_names_in_any_script_are_welcome(service: Service) -> None:
    for given, family in (
        (
            "\u0645\u0647\u0631\u200c\u0627\u0646\u06af\u06cc\u0632",
            "\u0627\u062d\u0645\u062f\u0632\u06cc",
        ),  # Dari, with a ZWNJ
        ("Ștefan", "Țurcan-Munteanu"),
        ("Олександра", "Ковальчук-Сiрко"),  # noqa: RUF001 - a Latin i, as keyboards do
        ("Ahmad", None),
    ):
        response = await service.client.post(
            "/v1/households", json=household(member(given, family)), headers=service.field
        )
        assert response.status_code == 201, (given, response.text)


async def test_a_body_over_one_mebibyte_is_refused(service: Service) -> None:
    body = household(member())
    body["location"]["settlement"] = "x" * (1024 * 1024)
    response = await service.client.post("/v1/households", json=body, headers=service.field)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_malformed_json_is_a_problem_too(service: Service) -> None:
    response = await service.client.post(
        "/v1/households",
        content=b'{"site_id": ',
        headers=service.field | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:haven:problem:invalid-json"


# --- reading -------------------------------------------------------------------------------


async def test_reading_a_household_sends_its_etag_and_is_audited(service: Service) -> None:
    given = random_name()
    result = await service.register(household(member(given=given)))
    response = await service.get(result["id"], service.field)
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"1"'
    body = response.json()
    assert body["members"][0]["given_name"] == given
    assert body["version"] == 1 and body["status"] == "active"
    await service.topics.wait_for(
        lambda r: (
            r.topic == AUDIT.name
            and r.value is not None
            and r.data["resource_id"] == result["id"]
            and r.data["action"] == "household.read"
            and r.data["actor_role"] == "field_staff"
        )
    )


async def test_who_reads_which_households(service: Service) -> None:
    result = await service.register(household(member()))
    for role in READERS:
        own = await service.get(result["id"], service.headers(role, sites=["MDA-CHI"]))
        assert own.status_code == 200, role
        if role is not Role.ADMIN:
            other = await service.get(result["id"], service.headers(role, sites=["MDA-PAL"]))
            assert other.status_code == 404, role
            assert other.json()["type"] == "urn:haven:problem:household-not-found"
    everywhere = await service.get(result["id"], service.headers(Role.MANAGER, sites=["*"]))
    assert everywhere.status_code == 200
    assert (await service.get(result["id"], service.headers(Role.PROVIDER))).status_code == 403
    assert (await service.client.get(f"/v1/households/{result['id']}")).status_code == 401
    missing = await service.get("01900000-0000-7000-8000-000000000000")
    assert missing.status_code == 404


async def test_sensitive_vulnerabilities_only_for_caseworkers_and_admins(
    service: Service,
) -> None:
    survivor = member(vulnerabilities=["survivor_of_gbv", "disability_mobility"])
    result = await service.register(household(survivor))
    seen = {}
    for role in READERS:
        body = (await service.get(result["id"], service.headers(role))).json()
        seen[role] = body["members"][0]["vulnerabilities"]
    assert seen[Role.CASEWORKER] == seen[Role.ADMIN] == ["disability_mobility", "survivor_of_gbv"]
    assert seen[Role.FIELD_STAFF] == seen[Role.MANAGER] == ["disability_mobility"]
    listed = await service.client.get(
        "/v1/households", params={"q": result["case_number"]}, headers=service.field
    )
    assert listed.json()["items"][0]["members"][0]["vulnerabilities"] == ["disability_mobility"]
    # downstream referral needs them: the event carries them (the topic's ACLs restrict it)
    [registered] = await service.topics.for_household(result["id"])
    assert "survivor_of_gbv" in registered.data["members"][0]["vulnerabilities"]


# --- changing ------------------------------------------------------------------------------


async def test_a_change_needs_the_current_etag(service: Service) -> None:
    result = await service.register(household(member()))
    url = f"/v1/households/{result['id']}"
    change = {"displacement_status": "asylum_seeker"}

    missing = await service.client.patch(url, json=change, headers=service.field)
    assert missing.status_code == 428
    assert missing.json()["type"] == "urn:haven:problem:precondition-required"

    stale = await service.client.patch(
        url, json=change, headers=service.field | {"If-Match": 'W/"7"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 1

    applied = await service.client.patch(
        url, json=change, headers=service.field | {"If-Match": 'W/"1"'}
    )
    assert applied.status_code == 200
    assert applied.headers["ETag"] == 'W/"2"'
    assert applied.json()["displacement_status"] == "asylum_seeker"

    # the same ETag again is now stale: never a silent overwrite
    again = await service.client.patch(
        url, json={"displacement_status": "idp"}, headers=service.field | {"If-Match": 'W/"1"'}
    )
    assert again.status_code == 412
    assert (await service.get(result["id"])).json()["displacement_status"] == "asylum_seeker"

    records = await service.topics.for_household(result["id"], count=2)
    assert event_types(records) == ["HouseholdRegistered", "HouseholdUpdated"]
    assert records[1].data["displacement_status"] == "asylum_seeker"
    assert records[1].data["version"] == 2


async def test_each_change_and_read_leaves_exactly_one_audit_record(service: Service) -> None:
    result = await service.register(household(member()))
    hid = result["id"]
    await service.get(hid, service.field)
    url = f"/v1/households/{hid}"
    refused = await service.client.patch(
        url, json={"preferred_language": "ro"}, headers=service.field | {"If-Match": 'W/"9"'}
    )
    assert refused.status_code == 412
    await service.client.patch(
        url, json={"preferred_language": "ro"}, headers=service.field | {"If-Match": 'W/"1"'}
    )
    expected = ["household.register", "household.read", "household.update"]
    await service.topics.wait_for(
        lambda r: r.topic == AUDIT.name and r.value is not None and r.data["resource_id"] == hid,
        count=len(expected),
    )
    await asyncio.sleep(0.5)  # anything more would have arrived by now
    assert await service.audit_actions(hid) == expected


async def test_only_field_staff_and_admins_change_households(service: Service) -> None:
    result = await service.register(household(member()))
    url = f"/v1/households/{result['id']}"
    for role in (Role.CASEWORKER, Role.MANAGER):
        response = await service.client.patch(
            url,
            json={"preferred_language": "ro"},
            headers=service.headers(role) | {"If-Match": 'W/"1"'},
        )
        assert response.status_code == 403, role
    other_site = await service.client.patch(
        url,
        json={"preferred_language": "ro"},
        headers=service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"]) | {"If-Match": 'W/"1"'},
    )
    assert other_site.status_code == 404
    by_admin = await service.client.patch(
        url, json={"preferred_language": "ro"}, headers=service.admin | {"If-Match": 'W/"1"'}
    )
    assert by_admin.status_code == 200


async def test_patch_fields_are_validated(service: Service) -> None:
    result = await service.register(household(member()))
    url = f"/v1/households/{result['id']}"
    headers = service.field | {"If-Match": 'W/"1"'}
    for body in (
        {},
        {"site_id": "MDA-PAL"},
        {"consent": {"data_processing": False}},
        {"displacement_status": None},
        {"phone": "12"},
    ):
        response = await service.client.patch(url, json=body, headers=headers)
        assert response.status_code == 422, body


async def test_withdrawing_contact_consent_tombstones_the_contact_card(service: Service) -> None:
    phone = random_phone()
    result = await service.register(household(member(), phone=phone, contact=True))
    url = f"/v1/households/{result['id']}"
    new_phone = random_phone()
    changed = await service.client.patch(
        url, json={"phone": new_phone}, headers=service.field | {"If-Match": 'W/"1"'}
    )
    assert changed.status_code == 200
    withdrawn = await service.client.patch(
        url, json={"consent": {"contact": False}}, headers=service.field | {"If-Match": 'W/"2"'}
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["consent"]["contact"] is False

    cards = await service.topics.for_household(result["id"], count=3, topic=CONTACTS.name)
    assert [c.value is None for c in cards] == [False, False, True]
    assert [cards[0].data["phone"], cards[1].data["phone"]] == [phone, new_phone]
    # and the household events never carried either phone
    for record in await service.topics.for_household(result["id"], count=3):
        assert phone.encode() not in record.value and new_phone.encode() not in record.value  # type: ignore[operator]


# --- members -------------------------------------------------------------------------------


async def test_members_are_added_changed_and_removed(service: Service) -> None:
    result = await service.register(household(member()))
    hid = result["id"]
    base = f"/v1/households/{hid}/members"

    added = await service.client.post(
        base,
        json=member(relationship="child", estimated_age=7, vulnerabilities=["disability_seeing"]),
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert added.status_code == 201, added.text
    assert added.headers["ETag"] == 'W/"2"'
    child = added.json()["members"][1]
    assert added.headers["Location"] == f"{base}/{child['id']}"
    assert child["estimated_age"] == 7

    renamed = await service.client.patch(
        f"{base}/{child['id']}",
        json={"given_name": "Ilinca", "date_of_birth": "2018-03-04"},
        headers=service.field | {"If-Match": 'W/"2"'},
    )
    assert renamed.status_code == 200, renamed.text
    child = renamed.json()["members"][1]
    assert (child["given_name"], child["date_of_birth"], child["estimated_age"]) == (
        "Ilinca",
        "2018-03-04",
        None,
    )
    key = await service.scalar(
        "SELECT given_key FROM household_member WHERE id = :id", id=child["id"]
    )
    assert key == "ilinka"  # the comparison keys follow the new name

    removed = await service.client.delete(
        f"{base}/{child['id']}", headers=service.field | {"If-Match": 'W/"3"'}
    )
    assert removed.status_code == 200
    assert len(removed.json()["members"]) == 1
    records = await service.topics.for_household(hid, count=4)
    assert event_types(records) == [
        "HouseholdRegistered",
        "VulnerabilitiesFlagged",
        "HouseholdUpdated",
        "HouseholdUpdated",
    ]
    assert [r.data["household_size"] for r in records] == [1, 2, 2, 1]
    assert records[1].data["members"][1]["age_band"] == "5-17"


async def test_member_changes_need_the_etag_too(service: Service) -> None:
    result = await service.register(household(member()))
    base = f"/v1/households/{result['id']}/members"
    head_id = (await service.get(result["id"])).json()["members"][0]["id"]
    assert (
        await service.client.post(base, json=member(relationship="child"), headers=service.field)
    ).status_code == 428
    assert (
        await service.client.patch(f"{base}/{head_id}", json={"sex": "male"}, headers=service.field)
    ).status_code == 428
    stale = await service.client.patch(
        f"{base}/{head_id}", json={"sex": "male"}, headers=service.field | {"If-Match": '"5"'}
    )
    assert stale.status_code == 412
    unknown = await service.client.patch(
        f"{base}/01900000-0000-7000-8000-000000000000",
        json={"sex": "male"},
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:haven:problem:member-not-found"


async def test_there_is_always_exactly_one_head(service: Service) -> None:
    result = await service.register(
        household(member(), member(relationship="spouse_or_partner", sex="male"))
    )
    hid = result["id"]
    base = f"/v1/households/{hid}/members"
    head, spouse = (await service.get(hid)).json()["members"]

    second_head = await service.client.post(
        base, json=member(relationship="head"), headers=service.field | {"If-Match": 'W/"1"'}
    )
    assert second_head.status_code == 409
    assert second_head.json()["type"] == "urn:haven:problem:household-head"
    remove_head = await service.client.delete(
        f"{base}/{head['id']}", headers=service.field | {"If-Match": 'W/"1"'}
    )
    assert remove_head.status_code == 409
    demote_head = await service.client.patch(
        f"{base}/{head['id']}",
        json={"relationship": "sibling"},
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert demote_head.status_code == 409
    unsaid = await service.client.patch(
        f"{base}/{spouse['id']}",
        json={"relationship": "head"},
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert unsaid.status_code == 409

    handed_over = await service.client.patch(
        f"{base}/{spouse['id']}",
        json={"relationship": "head", "former_head_relationship": "spouse_or_partner"},
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert handed_over.status_code == 200, handed_over.text
    relationships = {m["id"]: m["relationship"] for m in handed_over.json()["members"]}
    assert relationships == {head["id"]: "spouse_or_partner", spouse["id"]: "head"}
    [profile] = [
        r for r in await service.topics.for_household(hid, count=2) if r.data["version"] == 2
    ]
    assert [m["is_head"] for m in profile.data["members"]] == [False, True]


async def test_field_staff_cannot_erase_sensitive_flags_they_cannot_see(
    service: Service,
) -> None:
    result = await service.register(household(member(vulnerabilities=["survivor_of_trafficking"])))
    hid = result["id"]
    shown = (await service.get(hid, service.field)).json()["members"][0]
    assert shown["vulnerabilities"] == []
    response = await service.client.patch(
        f"/v1/households/{hid}/members/{shown['id']}",
        json={"vulnerabilities": ["pregnant_or_lactating"]},
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert response.status_code == 200
    assert response.json()["members"][0]["vulnerabilities"] == ["pregnant_or_lactating"]
    for_caseworker = (await service.get(hid, service.headers(Role.CASEWORKER))).json()
    assert for_caseworker["members"][0]["vulnerabilities"] == [
        "pregnant_or_lactating",
        "survivor_of_trafficking",
    ]
    records = await service.topics.for_household(hid, count=2)
    assert records[1].type == "VulnerabilitiesFlagged"


# --- needs and deactivation ----------------------------------------------------------------


async def test_needs_are_assessed(service: Service) -> None:
    result = await service.register(household(member(), needs=[{"type": "food"}]))
    url = f"/v1/households/{result['id']}/needs"
    needs = {"needs": [{"type": "medication", "priority": "urgent"}, {"type": "legal_aid"}]}
    assert (await service.client.put(url, json=needs, headers=service.field)).status_code == 428
    response = await service.client.put(
        url, json=needs, headers=service.field | {"If-Match": 'W/"1"'}
    )
    assert response.status_code == 200
    assert response.json()["needs"] == [
        {"type": "medication", "priority": "urgent"},
        {"type": "legal_aid", "priority": "normal"},
    ]
    duplicate = await service.client.put(
        url,
        json={"needs": [{"type": "food"}, {"type": "food"}]},
        headers=service.field | {"If-Match": 'W/"2"'},
    )
    assert duplicate.status_code == 422
    records = await service.topics.for_household(result["id"], count=2)
    assert records[1].type == "NeedsAssessed"
    assert records[1].data["needs"] == response.json()["needs"]


async def test_a_deactivated_household_is_announced_and_frozen(service: Service) -> None:
    result = await service.register(household(member()))
    hid = result["id"]
    url = f"/v1/households/{hid}/deactivate"
    for role in (Role.CASEWORKER, Role.MANAGER):
        denied = await service.client.post(
            url, json={"reason": "relocated"}, headers=service.headers(role)
        )
        assert denied.status_code == 403
    bad = await service.client.post(url, json={"reason": "bored"}, headers=service.field)
    assert bad.status_code == 422
    response = await service.client.post(url, json={"reason": "relocated"}, headers=service.field)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["deactivation_reason"], body["version"]) == (
        "deactivated",
        "relocated",
        2,
    )
    again = await service.client.post(url, json={"reason": "relocated"}, headers=service.field)
    assert again.status_code == 409
    frozen = await service.client.patch(
        f"/v1/households/{hid}",
        json={"preferred_language": "ro"},
        headers=service.field | {"If-Match": 'W/"2"'},
    )
    assert frozen.status_code == 409
    assert frozen.json()["type"] == "urn:haven:problem:household-not-editable"
    records = await service.topics.for_household(hid, count=2)
    assert records[1].type == "HouseholdDeactivated"
    assert records[1].data == {
        "household_id": hid,
        "site_id": "MDA-CHI",
        "reason_code": "relocated",
        "version": 2,
    }


# --- search --------------------------------------------------------------------------------


async def search(service: Service, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = await service.client.get(
        "/v1/households", params=params, headers=headers or service.admin
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_search_by_name_in_any_script_document_phone_and_case_number(
    service: Service,
) -> None:
    phone = random_phone()
    document = passport("EK 778899")
    result = await service.register(
        household(
            member("Вікторія", "Яценюк", nationality="UKR", documents=[document]), phone=phone
        )
    )
    ids = lambda page: [h["id"] for h in page["items"]]  # noqa: E731
    assert ids(await search(service, q="Yatseniuk")) == [result["id"]]
    assert ids(await search(service, q="viktoriia yatsen")) == [result["id"]]
    assert ids(await search(service, q="ЯЦЕНЮК")) == [result["id"]]
    assert ids(await search(service, q="ek778899")) == [result["id"]]
    assert ids(await search(service, q=phone)) == [result["id"]]
    assert ids(await search(service, q=result["case_number"].lower())) == [result["id"]]
    assert ids(await search(service, q="Nobodyknowsme")) == []
    # site scoping: field staff of another site find nothing
    other = service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"])
    assert ids(await search(service, other, q="Yatseniuk")) == []
    await service.topics.wait_for(
        lambda r: (
            r.topic == AUDIT.name
            and r.value is not None
            and r.data["resource_id"] == result["id"]
            and r.data["action"] == "household.search"
        )
    )


async def test_search_pages_with_a_cursor_and_a_bounded_limit(service: Service) -> None:
    family = random_name()
    created = [(await service.register(household(member(family=family))))["id"] for _ in range(5)]
    first = await search(service, q=family, limit=2)
    second = await search(service, q=family, limit=2, cursor=first["next_cursor"])
    third = await search(service, q=family, limit=2, cursor=second["next_cursor"])
    pages = [first, second, third]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert third["next_cursor"] is None
    assert [h["id"] for p in pages for h in p["items"]] == created[::-1]  # newest first

    too_many = await service.client.get(
        "/v1/households", params={"limit": 201}, headers=service.admin
    )
    assert too_many.status_code == 422
    bad_cursor = await service.client.get(
        "/v1/households", params={"cursor": "not-a-cursor"}, headers=service.admin
    )
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["type"] == "urn:haven:problem:invalid-cursor"
    for role in READERS:
        response = await service.client.get(
            "/v1/households", params={"q": family}, headers=service.headers(role)
        )
        assert response.status_code == 200, role
    provider = await service.client.get("/v1/households", headers=service.headers(Role.PROVIDER))
    assert provider.status_code == 403


async def test_search_filters_by_site_and_status(service: Service) -> None:
    family = random_name()
    here = await service.register(household(member(family=family)))
    there = await service.register(
        household(member(family=family), site_id="MDA-PAL"), service.admin
    )
    gone = await service.register(household(member(family=family)))
    await service.client.post(
        f"/v1/households/{gone['id']}/deactivate",
        json={"reason": "deceased"},
        headers=service.field,
    )
    ids = lambda page: {h["id"] for h in page["items"]}  # noqa: E731
    assert ids(await search(service, q=family)) == {here["id"], there["id"], gone["id"]}
    assert ids(await search(service, q=family, site_id="MDA-PAL")) == {there["id"]}
    assert ids(await search(service, q=family, status="deactivated")) == {gone["id"]}
    assert ids(await search(service, service.field, q=family)) == {here["id"], gone["id"]}


async def test_events_of_one_household_share_its_key_and_partition(service: Service) -> None:
    result = await service.register(household(member()))
    await service.client.put(
        f"/v1/households/{result['id']}/needs",
        json={"needs": [{"type": "hygiene"}]},
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    records = await service.topics.for_household(result["id"], count=2)
    assert {r.topic for r in records} == {HOUSEHOLDS.name}
    assert len({r.partition for r in records}) == 1
    assert [r.data["version"] for r in records] == [1, 2]


# --- the role matrix of every changing endpoint --------------------------------------------

NOT_WRITERS = (Role.CASEWORKER, Role.MANAGER, Role.PROVIDER, Role.WAREHOUSE_OPERATOR)


async def write_requests(service: Service) -> list[tuple[str, str, dict[str, Any] | None]]:
    """One request per changing endpoint, against a fresh household (version 1)."""
    hid = (await service.register(household(member(), member(relationship="child"))))["id"]
    child_id = (await service.get(hid)).json()["members"][1]["id"]
    base = f"/v1/households/{hid}"
    return [
        ("PATCH", base, {"preferred_language": "ro"}),
        ("POST", f"{base}/members", member(relationship="sibling")),
        ("PATCH", f"{base}/members/{child_id}", {"sex": "male"}),
        ("DELETE", f"{base}/members/{child_id}", None),
        ("PUT", f"{base}/needs", {"needs": [{"type": "food"}]}),
        ("POST", f"{base}/deactivate", {"reason": "relocated"}),
    ]


@pytest.mark.parametrize("role", NOT_WRITERS)
async def test_readers_and_other_roles_cannot_change_anything(service: Service, role: Role) -> None:
    for method, url, body in await write_requests(service):
        response = await service.client.request(
            method, url, json=body, headers=service.headers(role) | {"If-Match": 'W/"1"'}
        )
        assert response.status_code == 403, (role, method, url)


async def test_field_staff_of_another_site_find_nothing_to_change(service: Service) -> None:
    elsewhere = service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"]) | {"If-Match": 'W/"1"'}
    for method, url, body in await write_requests(service):
        response = await service.client.request(method, url, json=body, headers=elsewhere)
        assert response.status_code == 404, (method, url)


@pytest.mark.parametrize("role", [Role.FIELD_STAFF, Role.ADMIN])
async def test_field_staff_and_admins_change_everything(service: Service, role: Role) -> None:
    etag = 'W/"1"'
    for method, url, body in await write_requests(service):
        response = await service.client.request(
            method, url, json=body, headers=service.headers(role) | {"If-Match": etag}
        )
        assert response.status_code in (200, 201), (method, url, response.text)
        etag = response.headers["ETag"]
    assert etag == 'W/"7"'  # six changes, each one version

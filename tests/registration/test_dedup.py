"""Duplicate detection through the API: cross-script pairs, documents, phones, true negatives,
the review queue and its decisions, with the events on the topic."""
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

import pytest

from shared.auth import Role
from shared.events.catalog import CONTACTS
from tests.registration.factories import household, member, passport, random_phone
from tests.registration.support import Service


async def first_then_second(
    service: Service, first: dict[str, Any], second: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    registered = await service.register(household(first))
    assert registered["status"] == "active", registered
    return registered, await service.register(household(second))


@pytest.mark.parametrize(
    ("cyrillic", "latin", "nationality", "sex", "born"),
    [
        (("Олександр", "Шевченко"), ("Oleksandr", "Shevchenko"), "UKR", "male", "1981-03-14"),
        (("Александру", "Русу"), ("Alexandru", "Rusu"), "MDA", "male", "1972-11-02"),
        (("Наталья", "Ковалёва"), ("Natalia", "Kovaleva"), "RUS", "female", "1990-07-21"),
        (("Ștefan", "Munteanu"), ("Stefan", "Munteanu"), "MDA", "male", "1966-01-30"),
    ],
)
async def test_one_person_written_in_two_scripts_goes_to_review(
    service: Service,
    cyrillic: tuple[str, str],
    latin: tuple[str, str],
    nationality: str,
    sex: str,
    born: str,
) -> None:
    original, duplicate = await first_then_second(
        service,
        member(*cyrillic, sex=sex, date_of_birth=born, nationality=nationality),
        member(*latin, sex=sex, date_of_birth=born, nationality=nationality),
    )
    assert duplicate["status"] == "pending_review"
    [candidate] = duplicate["possible_duplicates"]
    assert candidate["household_id"] == original["id"]
    assert candidate["case_number"] == original["case_number"]
    assert candidate["score"] == 1.0
    assert set(candidate["reasons"]) == {"same_name", "same_birth_date"}

    [registered, review] = await service.topics.for_household(duplicate["id"], count=2)
    assert registered.type == "HouseholdRegistered"
    assert registered.data["status"] == "pending_review"
    assert review.type == "DuplicateReviewRequested"
    assert review.data["household_id"] == duplicate["id"]
    assert review.data["score"] == 1.0
    assert set(review.data["reasons"]) == {"same_name", "same_birth_date"}
    # the review written with the household is the one announced, with its candidates
    queue = await service.client.get("/v1/duplicates", headers=service.field)
    [queued] = [r for r in queue.json()["items"] if r["household_id"] == duplicate["id"]]
    assert queued["id"] == review.data["review_id"]
    assert (queued["status"], queued["site_id"], queued["score"]) == ("open", "MDA-CHI", 1.0)
    assert queued["reasons"] == ["same_birth_date", "same_name"]
    assert queued["candidates"] == duplicate["possible_duplicates"]
    assert queued["created_at"] and queued["resolved_at"] is None


async def test_the_same_document_is_a_certain_duplicate(service: Service) -> None:
    document = passport("MD 0099887", country="MDA")
    original, duplicate = await first_then_second(
        service,
        member("Vasile", "Ceban", date_of_birth="1958-04-04", documents=[document]),
        # a different spelling, a wrong birth date — the document still decides
        member(
            "Vasilii",
            "Chebanu",
            date_of_birth="1961-09-09",
            documents=[document | {"number": "md-0099887"}],
        ),
    )
    [candidate] = duplicate["possible_duplicates"]
    assert candidate["household_id"] == original["id"]
    assert (candidate["score"], candidate["reasons"]) == (1.0, ["same_document"])


async def test_a_document_from_another_country_is_another_document(service: Service) -> None:
    number = "AB123987"
    await service.register(
        household(member(date_of_birth="1970-01-01", documents=[passport(number, "UKR")]))
    )
    other = await service.register(
        household(member(date_of_birth="1995-05-05", documents=[passport(number, "ROU")]))
    )
    assert other["status"] == "active"


async def test_different_people_with_common_names_are_not_flagged(service: Service) -> None:
    people = [
        ("Ion", "Popescu", "male", "1975-02-01"),
        ("Ion", "Popescu", "male", "1990-06-15"),
        ("Ion", "Popescu", "male", "1975-10-20"),  # same year, months apart
        ("Maria", "Popescu", "female", "1975-02-01"),  # same day, another name
        ("Maria", "Ivanova", "female", "1988-08-08"),
        ("Мария", "Иванова", "female", "1962-12-12"),
        ("Elena", "Rusu", "female", "2001-03-03"),
        ("Olena", "Rusu", "female", "2012-03-03"),
    ]
    for given, family, sex, born in people:
        result = await service.register(
            household(member(given, family, sex=sex, date_of_birth=born))
        )
        assert result["status"] == "active", (given, family, born, result)
        assert result["possible_duplicates"] == []


async def test_an_estimated_age_within_two_years_matches(service: Service) -> None:
    original, duplicate = await first_then_second(
        service,
        member("Галина", "Ткаченко", sex="female", date_of_birth="1949-06-01", nationality="UKR"),
        member("Halyna", "Tkachenko", sex="female", estimated_age=service.clock().year - 1951),
    )
    [candidate] = duplicate["possible_duplicates"]
    assert candidate["household_id"] == original["id"]
    assert "estimated_age_within_2_years" in candidate["reasons"]


async def test_swapped_names_are_found(service: Service) -> None:
    original, duplicate = await first_then_second(
        service,
        member("Dumitru", "Gheorghiță", sex="male", date_of_birth="1983-08-19"),
        member("Gheorghita", "Dumitru", sex="male", date_of_birth="1983-08-19"),
    )
    [candidate] = duplicate["possible_duplicates"]
    assert candidate["household_id"] == original["id"]
    assert "swapped_names" in candidate["reasons"]


async def test_the_same_phone_and_birth_date_meet_across_unrelated_scripts(
    service: Service,
) -> None:
    phone = random_phone()
    first = await service.register(
        household(
            member("فاطمه", "رحیمی", date_of_birth="1993-02-11", nationality="AFG"), phone=phone
        )
    )
    second = await service.register(
        household(
            member("Fatema", "Rahimi", date_of_birth="1993-02-11", nationality="AFG"), phone=phone
        )
    )
    [candidate] = second["possible_duplicates"]
    assert candidate["household_id"] == first["id"]
    assert {"same_phone", "same_birth_date"} <= set(candidate["reasons"])
    # the phone alone (another person of the family) is not enough
    third = await service.register(
        household(
            member("Zahra", "Rahimi", date_of_birth="2015-07-07", nationality="AFG"), phone=phone
        )
    )
    assert third["status"] == "active"


async def test_a_new_member_who_is_registered_elsewhere_sends_the_household_to_review(
    service: Service,
) -> None:
    elsewhere = await service.register(
        household(member("Tatiana", "Moraru", date_of_birth="1987-12-24")), service.admin
    )
    target = await service.register(
        household(member("Andrei", "Moraru", sex="male", date_of_birth="1986-01-15"))
    )
    response = await service.client.post(
        f"/v1/households/{target['id']}/members",
        json=member(
            "Татьяна", "Морару", relationship="spouse_or_partner", date_of_birth="1987-12-24"
        ),
        headers=service.field | {"If-Match": 'W/"1"'},
    )
    assert response.status_code == 201
    assert response.json()["status"] == "pending_review"
    queue = await service.client.get("/v1/duplicates", headers=service.field)
    [review] = [r for r in queue.json()["items"] if r["household_id"] == target["id"]]
    assert review["candidates"][0]["household_id"] == elsewhere["id"]
    records = await service.topics.for_household(target["id"], count=3)
    assert [r.type for r in records] == [
        "HouseholdRegistered",
        "HouseholdUpdated",
        "DuplicateReviewRequested",
    ]


# --- the review queue ----------------------------------------------------------------------


async def pending_pair(
    service: Service, given: str, family: str, born: str
) -> tuple[str, dict[str, Any]]:
    original = await service.register(household(member(given, family, date_of_birth=born)))
    duplicate = await service.register(
        household(member(given, family, date_of_birth=born), contact=True, phone=random_phone())
    )
    assert duplicate["status"] == "pending_review"
    queue = await service.client.get("/v1/duplicates", headers=service.field)
    [review] = [r for r in queue.json()["items"] if r["household_id"] == duplicate["id"]]
    assert review["candidates"][0]["household_id"] == original["id"]
    return original["id"], review


async def test_the_queue_shows_scores_reasons_and_candidates_to_readers(
    service: Service,
) -> None:
    _, review = await pending_pair(service, "Svetlana", "Lungu", "1969-09-09")
    assert review["status"] == "open"
    assert review["score"] == 1.0
    assert review["reasons"] == ["same_birth_date", "same_name"]
    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.SUPERVISOR, Role.ADMIN):
        response = await service.client.get("/v1/duplicates", headers=service.headers(role))
        assert response.status_code == 200
        assert review["id"] in [r["id"] for r in response.json()["items"]], role
    provider = await service.client.get("/v1/duplicates", headers=service.headers(Role.PROVIDER))
    assert provider.status_code == 403
    elsewhere = await service.client.get(
        "/v1/duplicates", headers=service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"])
    )
    assert review["id"] not in [r["id"] for r in elsewhere.json()["items"]]
    paged = await service.client.get("/v1/duplicates", params={"limit": 1}, headers=service.admin)
    assert len(paged.json()["items"]) == 1 and paged.json()["next_cursor"]


async def test_merging_folds_the_household_into_the_original(service: Service) -> None:
    original_id, review = await pending_pair(service, "Petru", "Cojocaru", "1955-05-05")
    url = f"/v1/duplicates/{review['id']}/resolve"
    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.PROVIDER, Role.ADMIN):
        denied = await service.client.post(
            url, json={"action": "merge", "merge_into": original_id}, headers=service.headers(role)
        )
        assert denied.status_code == 403, role
    supervisor = service.supervisor  # did not register either household
    invalid = await service.client.post(url, json={"action": "merge"}, headers=supervisor)
    assert invalid.status_code == 422
    itself = await service.client.post(
        url, json={"action": "merge", "merge_into": review["household_id"]}, headers=supervisor
    )
    assert itself.status_code == 409

    merged = await service.client.post(
        url, json={"action": "merge", "merge_into": original_id}, headers=supervisor
    )
    assert merged.status_code == 200, merged.text
    assert (merged.json()["status"], merged.json()["resolution"]) == ("resolved", "merge")
    household_after = (await service.get(review["household_id"])).json()
    assert (household_after["status"], household_after["merged_into"]) == ("merged", original_id)

    again = await service.client.post(url, json={"action": "not_duplicate"}, headers=supervisor)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:haven:problem:review-not-open"

    records = await service.topics.for_household(review["household_id"], count=3)
    assert records[-1].type == "HouseholdsMerged"
    assert records[-1].data == {
        "surviving_id": original_id,
        "merged_id": review["household_id"],
        "site_id": "MDA-CHI",
    }
    cards = await service.topics.for_household(review["household_id"], count=2, topic=CONTACTS.name)
    assert cards[-1].value is None  # the merged household's contact card is gone

    # a merged household is no longer a candidate
    third = await service.register(
        household(member("Petru", "Cojocaru", date_of_birth="1955-05-05"))
    )
    assert [c["household_id"] for c in third["possible_duplicates"]] == [original_id]


async def test_not_a_duplicate_activates_the_household(service: Service) -> None:
    _, review = await pending_pair(service, "Nadejda", "Botnari", "1977-07-17")
    response = await service.client.post(
        f"/v1/duplicates/{review['id']}/resolve",
        json={"action": "not_duplicate"},
        headers=service.supervisor,
    )
    assert response.status_code == 200
    assert response.json()["resolution"] == "not_duplicate"
    household_after = (await service.get(review["household_id"])).json()
    assert (household_after["status"], household_after["version"]) == ("active", 2)
    records = await service.topics.for_household(review["household_id"], count=3)
    assert records[-1].type == "HouseholdUpdated"
    assert records[-1].data["status"] == "active"
    resolved = await service.client.get(
        "/v1/duplicates", params={"status": "resolved"}, headers=service.admin
    )
    assert review["id"] in [r["id"] for r in resolved.json()["items"]]


async def test_reviews_of_other_sites_are_not_found(service: Service) -> None:
    _, review = await pending_pair(service, "Mihai", "Plămădeală", "1991-11-11")
    response = await service.client.post(
        f"/v1/duplicates/{review['id']}/resolve",
        json={"action": "not_duplicate"},
        headers=service.headers(Role.SUPERVISOR, sites=["MDA-PAL"]),
    )
    assert response.status_code == 404
    missing = await service.client.post(
        "/v1/duplicates/01900000-0000-7000-8000-000000000000/resolve",
        json={"action": "not_duplicate"},
        headers=service.supervisor,
    )
    assert missing.status_code == 404


async def test_deactivating_a_pending_household_closes_its_review(service: Service) -> None:
    _, review = await pending_pair(service, "Victor", "Bejenari", "1980-10-10")
    response = await service.client.post(
        f"/v1/households/{review['household_id']}/deactivate",
        json={"reason": "duplicate"},
        headers=service.field,
    )
    assert response.status_code == 200
    closed = await service.client.get(
        "/v1/duplicates", params={"status": "closed"}, headers=service.admin
    )
    [entry] = [r for r in closed.json()["items"] if r["id"] == review["id"]]
    assert entry["resolution"] == "household_deactivated"

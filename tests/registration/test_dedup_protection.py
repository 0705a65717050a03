"""Need-to-know and four eyes on the duplicate check (issue #15, items 5 and 6).

A field worker registering someone learns nothing about a candidate at a site outside theirs
but that there is one; only supervisors see cross-site pairs in the queue, and only a
supervisor who registered neither household of a review decides it, into one of its
candidates.
"""

from __future__ import annotations

import json
from typing import Any

from shared.auth import Role
from shared.events.catalog import AUDIT
from tests.registration.factories import household, member, random_phone
from tests.registration.support import Service
from tests.support.tokens import auth_headers

QUEUE = "/v1/duplicates"


def person(given: str, family: str, born: str) -> dict[str, Any]:
    return member(given, family, date_of_birth=born)


async def queued(service: Service, household_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await service.client.get(QUEUE, params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    [review] = [r for r in response.json()["items"] if r["household_id"] == household_id]
    found: dict[str, Any] = review
    return found


def mentions(body: Any, *values: str) -> list[str]:
    text = json.dumps(body)
    return [value for value in values if value in text]


async def test_a_candidate_at_another_site_is_only_said_to_exist(service: Service) -> None:
    pal_field = service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"], sub="field-pal")
    target = await service.register(
        household(person("Lilia", "Caraman", "1984-02-29"), site_id="MDA-PAL"), pal_field
    )
    # a made-up person with the target's name and birth date, registered at another site
    probe = await service.register(household(person("Lilia", "Caraman", "1984-02-29")))
    assert probe["status"] == "pending_review"
    assert probe["possible_duplicates"] == []
    assert probe["possible_duplicate_at_another_site"] is True
    secret = (target["id"], target["case_number"], "MDA-PAL")
    assert mentions(probe, *secret) == []

    for role in (Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER):
        review = await queued(service, probe["id"], service.headers(role))
        assert review["candidates"] == [], role
        assert review["possible_duplicate_at_another_site"] is True
        assert (review["score"], review["reasons"]) == (None, [])  # no score detail
        assert mentions(review, *secret) == [], role

    # supervisors of the review's site see the pair, admins everything
    for headers in (service.supervisor, service.admin):
        review = await queued(service, probe["id"], headers)
        [candidate] = review["candidates"]
        assert (candidate["household_id"], candidate["case_number"], candidate["site_id"]) == (
            secret
        )
        assert review["possible_duplicate_at_another_site"] is False
        assert (review["score"], review["reasons"]) == (1.0, ["same_birth_date", "same_name"])
    # a supervisor of the other site does not see the review of a household at this one
    elsewhere = await service.client.get(
        QUEUE, headers=service.headers(Role.SUPERVISOR, sites=["MDA-PAL"]), params={"limit": 200}
    )
    assert probe["id"] not in [r["household_id"] for r in elsewhere.json()["items"]]


async def test_candidates_at_the_callers_sites_stay_visible_beside_a_masked_one(
    service: Service,
) -> None:
    somebody = ("Grigore", "Ursu", "1979-06-06")
    at_pal = await service.register(household(person(*somebody), site_id="MDA-PAL"), service.admin)
    at_chi = await service.register(household(person(*somebody)), service.admin)
    assert len(at_chi["possible_duplicates"]) == 1  # admins see every site
    result = await service.register(household(person(*somebody)))
    assert [c["household_id"] for c in result["possible_duplicates"]] == [at_chi["id"]]
    assert result["possible_duplicate_at_another_site"] is True
    assert mentions(result, at_pal["id"], at_pal["case_number"], "MDA-PAL") == []
    review = await queued(service, result["id"], service.field)
    assert [c["household_id"] for c in review["candidates"]] == [at_chi["id"]]
    assert review["score"] == 1.0 and review["possible_duplicate_at_another_site"] is True


async def pending_pair(
    service: Service, registrar: dict[str, str], second: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A household registered by ``registrar`` and its duplicate (by ``second`` or the
    default field worker), with the duplicate's review."""
    somebody = member(date_of_birth="1971-01-21")
    original = await service.register(household(somebody), registrar)
    duplicate = await service.register(household(somebody, phone=random_phone()), second)
    assert duplicate["status"] == "pending_review"
    return original, await queued(service, duplicate["id"], service.supervisor)


async def denials(service: Service, household_id: str, sub: str) -> list[Any]:
    return await service.topics.wait_for(
        lambda r: (
            r.topic == AUDIT.name
            and r.value is not None
            and r.data["resource_id"] == household_id
            and r.data["action"] == "duplicate.resolve"
            and r.data["outcome"] == "denied"
            and r.data["actor_sub"] == sub
        )
    )


async def test_who_registered_a_household_of_the_review_may_not_decide_it(
    service: Service,
) -> None:
    both = auth_headers(Role.FIELD_STAFF, Role.SUPERVISOR, sites=["MDA-CHI"], sub="both-roles")
    # the registrar of the original (the candidate) ...
    original, review = await pending_pair(service, both)
    url = f"{QUEUE}/{review['id']}/resolve"
    merge = {"action": "merge", "merge_into": original["id"]}
    for decision in (merge, {"action": "not_duplicate"}):
        refused = await service.client.post(url, json=decision, headers=both)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "urn:haven:problem:four-eyes"
        assert "another supervisor" in refused.json()["detail"]
    await denials(service, review["household_id"], "both-roles")
    assert (await queued(service, review["household_id"], service.supervisor))["status"] == "open"

    # ... and the registrar of the household under review
    _, other = await pending_pair(service, service.field, both)
    refused = await service.client.post(
        f"{QUEUE}/{other['id']}/resolve", json={"action": "not_duplicate"}, headers=both
    )
    assert refused.status_code == 403

    # a supervisor who registered neither decides
    decided = await service.client.post(
        url, json={"action": "not_duplicate"}, headers=service.supervisor
    )
    assert decided.status_code == 200, decided.text


async def test_who_sent_a_household_to_review_by_adding_a_member_may_not_decide_it(
    service: Service,
) -> None:
    both = auth_headers(Role.FIELD_STAFF, Role.SUPERVISOR, sites=["MDA-CHI"], sub="adder")
    somebody = member(date_of_birth="1966-06-16")
    await service.register(household(somebody))
    target = await service.register(household(member(date_of_birth="1965-05-15")))
    added = await service.client.post(
        f"/v1/households/{target['id']}/members",
        json=somebody | {"relationship": "spouse_or_partner"},
        headers=both | {"If-Match": 'W/"1"'},
    )
    assert added.json()["status"] == "pending_review", added.text
    review = await queued(service, target["id"], service.supervisor)
    refused = await service.client.post(
        f"{QUEUE}/{review['id']}/resolve", json={"action": "not_duplicate"}, headers=both
    )
    assert refused.status_code == 403


async def test_merge_into_must_be_a_candidate_of_the_review(service: Service) -> None:
    _, review = await pending_pair(service, service.field)
    bystander = await service.register(household(member()))
    refused = await service.client.post(
        f"{QUEUE}/{review['id']}/resolve",
        json={"action": "merge", "merge_into": bystander["id"]},
        headers=service.supervisor,
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:haven:problem:invalid-merge-target"
    assert (await service.get(bystander["id"])).json()["status"] == "active"
    assert (await queued(service, review["household_id"], service.supervisor))["status"] == "open"


async def test_a_supervisor_merges_a_cross_site_pair(service: Service) -> None:
    somebody = member(date_of_birth="1958-08-18")
    original = await service.register(
        household(somebody, site_id="MDA-PAL"),
        service.headers(Role.FIELD_STAFF, sites=["MDA-PAL"], sub="field-pal"),
    )
    duplicate = await service.register(household(somebody))
    review = await queued(service, duplicate["id"], service.supervisor)
    merged = await service.client.post(
        f"{QUEUE}/{review['id']}/resolve",
        json={"action": "merge", "merge_into": original["id"]},
        headers=service.supervisor,
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["merge_into"] == original["id"]
    after = (await service.get(duplicate["id"])).json()
    assert (after["status"], after["merged_into"]) == ("merged", original["id"])

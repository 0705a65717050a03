"""Recording distributions: household known and active, within the entitlement, from stock
that exists and has not expired — or refused with everything listed and nothing written."""

from __future__ import annotations

import uuid
from typing import Any

from services.distribution.models import ItemCategory
from shared.auth import Role
from shared.vocabulary import HouseholdStatus, NeedType
from tests.distribution.support import Site, ledger_mismatches
from tests.support.tokens import auth_headers
from tests.support.topics import TopicReader


async def entitlement(site: Site, household: str, category: str) -> dict[str, Any]:
    response = await site.client.get(
        f"/v1/households/{household}/entitlements", headers=site.operator
    )
    assert response.status_code == 200, response.text
    return next(c for c in response.json()["categories"] if c["category"] == category)


async def issues_of(site: Site) -> list[dict[str, Any]]:
    ledger = await site.client.get(
        f"/v1/warehouses/{site.warehouse_id}/ledger", headers=site.operator
    )
    return [e for e in ledger.json()["items"] if e["kind"] == "issue"]


async def test_an_unknown_household_is_a_404_that_says_to_retry(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    unknown = str(uuid.uuid4())
    response = await site.distribute(unknown, [{"sku": sku, "quantity": 1}])
    assert response.status_code == 404
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["type"] == "urn:haven:problem:household-not-known-yet"
    assert "registration may not have reached distribution yet" in problem["detail"]
    assert problem["household_id"] == unknown
    # a household of another site answers exactly the same
    elsewhere = Site(**{**site.__dict__, "site_id": "ELSEWHERE"})
    theirs = await elsewhere.household()
    assert (await site.distribute(theirs, [{"sku": sku, "quantity": 1}])).status_code == 404
    assert (await site.stock())[sku]["on_hand"] == 5


async def test_a_recorded_distribution_issues_stock_and_is_published(
    site: Site, distributions_topic: TopicReader
) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 10, batch="F-1", expires_on="2025-12-31")
    household = await site.household(size=4)
    response = await site.distribute(
        household, [{"sku": sku, "quantity": 1}], client_ref="d-1-" + household
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["household_id"] == household and body["status"] == "recorded"
    assert body["policy_version"] == "2025.1" and body["distributed_on"] == "2025-03-10"
    assert body["lines"][0]["issued"] == [
        {"batch": "F-1", "expires_on": "2025-12-31", "quantity": 1}
    ]
    (event,) = await distributions_topic.wait_for(
        lambda r: r.data.get("distribution_id") == body["id"]
    )
    assert event.type == "DistributionRecorded" and event.key == household
    assert event.data["lines"] == [{"sku": sku, "category": "food", "quantity": 1, "batch": "F-1"}]
    assert (
        event.data["site_id"] == site.site_id and event.headers["ce_source"] == "haven/distribution"
    )
    assert (await site.stock())[sku]["on_hand"] == 9
    food = await entitlement(site, household, "food")
    assert (food["received"], food["due"], food["next_eligible_on"]) == (1, 0, "2025-04-09")


async def test_a_second_identical_attempt_is_over_entitlement_until_the_window_ends(
    site: Site,
) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 10)
    household = await site.household(size=2)
    assert (await site.distribute(household, [{"sku": sku, "quantity": 1}])).status_code == 201
    again = await site.distribute(household, [{"sku": sku, "quantity": 1}])
    assert again.status_code == 409
    problem = again.json()
    assert problem["type"] == "urn:haven:problem:entitlement-exceeded"
    assert problem["lines"] == [
        {
            "line": 0,
            "sku": sku,
            "category": "food",
            "requested": 1,
            "allowed": 0,
            "received_in_window": 1,
            "window_days": 30,
            "next_eligible_on": "2025-04-09",
            "reason": "received_in_window",
        }
    ]
    site.service.clock.advance(days=29)
    assert (await site.distribute(household, [{"sku": sku, "quantity": 1}])).status_code == 409
    site.service.clock.advance(days=1)
    assert (await site.distribute(household, [{"sku": sku, "quantity": 1}])).status_code == 201
    assert (await site.stock())[sku]["on_hand"] == 8


async def test_larger_households_get_two_food_parcels(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 10)
    small, large = await site.household(size=5), await site.household(size=6)
    assert (await site.distribute(small, [{"sku": sku, "quantity": 2}])).status_code == 409
    assert (await site.distribute(large, [{"sku": sku, "quantity": 2}])).status_code == 201


async def test_hygiene_kits_per_person_and_several_lines_share_the_category(site: Site) -> None:
    kit = await site.stocked(ItemCategory.HYGIENE, 20)
    baby_kit = await site.stocked(ItemCategory.HYGIENE, 20)
    household = await site.household(size=3)
    over = await site.distribute(
        household, [{"sku": kit, "quantity": 2}, {"sku": baby_kit, "quantity": 2}]
    )
    assert over.status_code == 409
    assert [(line["line"], line["allowed"]) for line in over.json()["lines"]] == [(0, 3), (1, 3)]
    assert (
        await site.distribute(
            household, [{"sku": kit, "quantity": 2}, {"sku": baby_kit, "quantity": 1}]
        )
    ).status_code == 201


async def test_non_food_items_once_and_shelter_material_only_where_shelter_is_a_need(
    site: Site,
) -> None:
    blanket = await site.stocked(ItemCategory.NON_FOOD_ITEM, 10)
    tarpaulin = await site.stocked(ItemCategory.SHELTER_MATERIAL, 10)
    household = await site.household(needs=[NeedType.FOOD])
    assert (await site.distribute(household, [{"sku": blanket, "quantity": 1}])).status_code == 201
    site.service.clock.advance(days=400)
    once = await site.distribute(household, [{"sku": blanket, "quantity": 1}])
    assert once.status_code == 409 and once.json()["lines"][0]["reason"] == "already_received"
    no_need = await site.distribute(household, [{"sku": tarpaulin, "quantity": 1}])
    assert (
        no_need.status_code == 409 and no_need.json()["lines"][0]["reason"] == "need_not_assessed"
    )
    sheltered = await site.household(needs=[NeedType.SHELTER])
    assert (
        await site.distribute(sheltered, [{"sku": tarpaulin, "quantity": 1}])
    ).status_code == 201


async def test_medication_only_against_a_reference_each_dispensed_once(site: Site) -> None:
    medicine = await site.stocked(ItemCategory.MEDICATION, 50, batch="M-1", expires_on="2026-01-31")
    household = await site.household()
    missing = await site.distribute(household, [{"sku": medicine, "quantity": 2}])
    assert missing.status_code == 422
    assert missing.json()["type"].endswith("reference-required")
    assert missing.json()["lines"] == [{"line": 0, "sku": medicine}]
    line = {
        "sku": medicine,
        "quantity": 2,
        "prescription_reference": await site.prescribed(household),
    }
    assert (await site.distribute(household, [line])).status_code == 201
    twice = await site.distribute(household, [line])
    assert twice.status_code == 409
    assert twice.json()["lines"][0]["reason"] == "reference_already_dispensed"
    other = {**line, "prescription_reference": await site.prescribed(household), "quantity": 30}
    assert (await site.distribute(household, [other])).status_code == 201


async def test_not_enough_stock_lists_the_shortfalls_and_writes_nothing(site: Site) -> None:
    food = await site.stocked(ItemCategory.FOOD, 1)
    hygiene = await site.stocked(ItemCategory.HYGIENE, 2)
    household = await site.household(size=6)
    response = await site.distribute(
        household, [{"sku": food, "quantity": 2}, {"sku": hygiene, "quantity": 3}]
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:haven:problem:insufficient-stock"
    assert problem["shortfalls"] == [
        {"line": 0, "sku": food, "batch": None, "requested": 2, "available": 1},
        {"line": 1, "sku": hygiene, "batch": None, "requested": 3, "available": 2},
    ]
    assert await issues_of(site) == []
    assert (await entitlement(site, household, "food"))["due"] == 2


async def test_expired_batches_are_never_issued(site: Site) -> None:
    sku = await site.item(ItemCategory.HYGIENE)
    await site.receive(sku, 5, batch="OLD", expires_on="2025-03-12")
    await site.receive(sku, 5, batch="NEW", expires_on="2025-09-30")
    household = await site.household(size=7)
    site.service.clock.advance(days=2)  # 12 March: OLD expires today
    named = await site.distribute(household, [{"sku": sku, "quantity": 1, "batch": "OLD"}])
    assert named.status_code == 409 and named.json()["type"].endswith("batch-expired")
    picked = await site.distribute(household, [{"sku": sku, "quantity": 6}])
    assert picked.status_code == 409  # only NEW's 5 are usable
    assert picked.json()["shortfalls"][0]["available"] == 5
    fine = await site.distribute(household, [{"sku": sku, "quantity": 5}])
    assert fine.status_code == 201
    assert fine.json()["lines"][0]["issued"] == [
        {"batch": "NEW", "expires_on": "2025-09-30", "quantity": 5}
    ]


async def test_first_expiry_first_out_unless_a_batch_is_named(site: Site) -> None:
    sku = await site.item(ItemCategory.HYGIENE)
    await site.receive(sku, 2, batch="LATE", expires_on="2025-12-01")
    await site.receive(sku, 2, batch="EARLY", expires_on="2025-05-01")
    first = await site.distribute(await site.household(size=3), [{"sku": sku, "quantity": 3}])
    assert [(i["batch"], i["quantity"]) for i in first.json()["lines"][0]["issued"]] == [
        ("EARLY", 2),
        ("LATE", 1),
    ]
    await site.receive(sku, 2, batch="EARLY", expires_on="2025-05-01")
    named = await site.distribute(
        await site.household(size=3), [{"sku": sku, "quantity": 1, "batch": "LATE"}]
    )
    assert named.json()["lines"][0]["issued"][0]["batch"] == "LATE"


async def test_a_resend_returns_the_original_result_and_a_changed_body_is_refused(
    site: Site,
) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    household = await site.household()
    client_ref = f"tablet-7:{uuid.uuid4()}"
    first = await site.distribute(household, [{"sku": sku, "quantity": 1}], client_ref=client_ref)
    assert first.status_code == 201
    site.service.clock.advance(minutes=5)  # e.g. the desk's retry after a lost response
    again = await site.distribute(household, [{"sku": sku, "quantity": 1}], client_ref=client_ref)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert len(await issues_of(site)) == 1
    changed = await site.distribute(household, [{"sku": sku, "quantity": 2}], client_ref=client_ref)
    assert changed.status_code == 409
    assert changed.json()["type"] == "urn:haven:problem:client-ref-reused"
    assert (await site.stock())[sku]["on_hand"] == 4


async def test_household_status_decides_who_can_be_served(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    pending = await site.household(status=HouseholdStatus.PENDING_REVIEW)
    response = await site.distribute(pending, [{"sku": sku, "quantity": 1}])
    assert response.status_code == 409
    assert response.json()["type"].endswith("household-not-active")
    assert response.json()["household_status"] == "pending_review"


async def test_void_reverses_stock_and_entitlement_and_is_published(
    site: Site, distributions_topic: TopicReader
) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5, batch="V-1", expires_on="2025-10-01")
    household = await site.household()
    recorded = (await site.distribute(household, [{"sku": sku, "quantity": 1}])).json()
    url = f"/v1/distributions/{recorded['id']}/void"
    operator_cannot = await site.client.post(
        url, json={"reason": "wrong_household"}, headers=site.operator
    )
    assert operator_cannot.status_code == 403
    other_manager = auth_headers(Role.MANAGER, sites=["ELSEWHERE"])
    assert (
        await site.client.post(url, json={"reason": "wrong_household"}, headers=other_manager)
    ).status_code == 404
    free_text = await site.client.post(
        url, json={"reason": "Ana gave it back"}, headers=site.manager
    )
    assert free_text.status_code == 422
    voided = await site.client.post(url, json={"reason": "wrong_household"}, headers=site.manager)
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "voided" and voided.json()["void_reason"] == "wrong_household"
    (event,) = await distributions_topic.wait_for(
        lambda r: r.type == "DistributionVoided" and r.data["distribution_id"] == recorded["id"]
    )
    assert event.key == household and event.data["reason_code"] == "wrong_household"
    assert (await site.stock())[sku]["on_hand"] == 5
    ledger = (
        await site.client.get(f"/v1/warehouses/{site.warehouse_id}/ledger", headers=site.operator)
    ).json()["items"]
    assert [(e["kind"], e["batch"], e["quantity"]) for e in ledger[:2]] == [
        ("void_reversal", "V-1", 1),
        ("issue", "V-1", -1),
    ]
    assert (await entitlement(site, household, "food"))["due"] == 1
    twice = await site.client.post(url, json={"reason": "wrong_household"}, headers=site.manager)
    assert twice.status_code == 409 and twice.json()["type"].endswith("already-voided")
    assert (await site.distribute(household, [{"sku": sku, "quantity": 1}])).status_code == 201
    assert await ledger_mismatches(site.service) == []


async def test_distributions_are_listed_by_household_warehouse_and_dates(site: Site) -> None:
    sku = await site.stocked(ItemCategory.HYGIENE, 50)
    household = await site.household(size=7)
    ids = []
    for _ in range(3):
        response = await site.distribute(household, [{"sku": sku, "quantity": 1}])
        ids.append(response.json()["id"])
        site.service.clock.advance(days=1)
    other = await site.household()
    await site.distribute(other, [{"sku": sku, "quantity": 1}])

    async def listing(**params: Any) -> dict[str, Any]:
        response = await site.client.get("/v1/distributions", params=params, headers=site.manager)
        assert response.status_code == 200, response.text
        return response.json()

    page = await listing(household_id=household, limit=2)
    assert [d["id"] for d in page["items"]] == [ids[2], ids[1]]
    rest = await listing(household_id=household, limit=2, cursor=page["next_cursor"])
    assert [d["id"] for d in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    dated = await listing(
        warehouse_id=site.warehouse_id, **{"from": "2025-03-11", "to": "2025-03-11"}
    )
    assert [d["id"] for d in dated["items"]] == [ids[1]]
    assert len((await listing(warehouse_id=site.warehouse_id))["items"]) == 4
    assert (
        await site.client.get(
            "/v1/distributions", params={"from": "11.03.2025"}, headers=site.manager
        )
    ).status_code == 422
    outsider = auth_headers(Role.MANAGER, sites=["ELSEWHERE"])
    theirs = await site.client.get(
        "/v1/distributions", params={"household_id": household}, headers=outsider
    )
    assert theirs.json()["items"] == []
    one = await site.client.get(f"/v1/distributions/{ids[0]}", headers=site.operator)
    assert one.status_code == 200 and one.json()["lines"][0]["issued"][0]["quantity"] == 1
    assert (
        await site.client.get(f"/v1/distributions/{ids[0]}", headers=outsider)
    ).status_code == 404


async def test_bad_distribution_requests_are_refused_before_anything_happens(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    household = await site.household()
    for lines in ([], [{"sku": sku, "quantity": 0}], [{"sku": sku, "quantity": 100_000}]):
        assert (await site.distribute(household, lines)).status_code == 422
    unknown_sku = await site.distribute(household, [{"sku": "NOPE-1", "quantity": 1}])
    assert unknown_sku.status_code == 422 and unknown_sku.json()["skus"] == ["NOPE-1"]
    nowhere = await site.distribute(
        household, [{"sku": sku, "quantity": 1}], warehouse_id=str(uuid.uuid4())
    )
    assert nowhere.status_code == 404 and nowhere.json()["type"].endswith("warehouse-not-found")
    extra = await site.client.post(
        "/v1/distributions",
        json={
            "household_id": household,
            "warehouse_id": site.warehouse_id,
            "lines": [{"sku": sku, "quantity": 1}],
            "client_ref": "x-1",
            "notes": "Ana Popescu",
        },
        headers=site.operator,
    )
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "notes"
    assert (
        await site.distribute(household, [{"sku": sku, "quantity": 1}], headers=site.manager)
    ).status_code == 403
    assert await issues_of(site) == []


async def test_every_change_and_every_read_of_a_household_is_audited(
    site: Site, audit_topic: TopicReader
) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    household = await site.household()
    recorded = (await site.distribute(household, [{"sku": sku, "quantity": 1}])).json()
    await site.client.post(
        f"/v1/distributions/{recorded['id']}/void",
        json={"reason": "duplicate"},
        headers=site.manager,
    )
    await entitlement(site, household, "food")
    refused = await site.distribute(str(uuid.uuid4()), [{"sku": sku, "quantity": 1}])
    assert refused.status_code == 404

    def about(resource: str):  # type: ignore[no-untyped-def]
        return lambda r: r.data.get("resource_id") == resource

    changes = await audit_topic.wait_for(about(recorded["id"]), count=2)
    assert [(c.data["action"], c.data["actor_role"]) for c in changes] == [
        ("distribution.record", "warehouse_operator"),
        ("distribution.void", "manager"),
    ]
    assert changes[1].data["reason"] == "duplicate" and changes[0].key == "distribution"
    (read,) = await audit_topic.wait_for(about(household))
    assert read.data["action"] == "entitlements.read"
    receipt = await audit_topic.wait_for(
        lambda r: (
            r.data.get("action") == "stock.receive"
            and r.data.get("resource_id") == site.warehouse_id
        )
    )
    assert len(receipt) == 1

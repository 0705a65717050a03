"""Receipts, transfers and adjustments through the ledger; the stock view; reorder events."""

from __future__ import annotations

import uuid

from services.distribution.models import ItemCategory
from shared.auth import Role
from tests.distribution.support import Site, ledger_mismatches
from tests.support.tokens import auth_headers
from tests.support.topics import TopicReader


async def test_a_receipt_adds_ledger_entries_and_balances_per_batch(site: Site) -> None:
    sku = await site.item(ItemCategory.MEDICATION, unit="box")
    response = await site.client.post(
        f"/v1/warehouses/{site.warehouse_id}/receipts",
        json={
            "lines": [
                {"sku": sku, "quantity": 30, "batch": "B-1", "expires_on": "2025-06-30"},
                {"sku": sku, "quantity": 20, "batch": "B-2", "expires_on": "2025-04-30"},
                {"sku": sku, "quantity": 5, "batch": "B-1", "expires_on": "2025-06-30"},
            ],
            "reference": "WB-2025-0042",
        },
        headers=site.operator,
    )
    assert response.status_code == 201, response.text
    movements = response.json()["movements"]
    assert [(m["kind"], m["batch"], m["quantity"], m["balance_after"]) for m in movements] == [
        ("receipt", "B-1", 30, 30),
        ("receipt", "B-2", 20, 20),
        ("receipt", "B-1", 5, 35),
    ]
    stock = (await site.stock())[sku]
    assert (stock["on_hand"], stock["available"]) == (55, 55)
    assert [(b["batch"], b["quantity"]) for b in stock["batches"]] == [("B-2", 20), ("B-1", 35)]
    assert await ledger_mismatches(site.service) == []


async def test_medication_needs_batch_and_expiry_and_expired_goods_are_refused(site: Site) -> None:
    medication = await site.item(ItemCategory.MEDICATION)
    food = await site.item(ItemCategory.FOOD)
    response = await site.client.post(
        f"/v1/warehouses/{site.warehouse_id}/receipts",
        json={
            "lines": [
                {"sku": medication, "quantity": 1, "batch": "B"},
                {"sku": food, "quantity": 1, "batch": "F", "expires_on": "2025-03-10"},
                {"sku": food, "quantity": 1, "expires_on": "2025-12-31"},
                {"sku": food, "quantity": 1},
            ],
            "reference": "GRN-7",
        },
        headers=site.operator,
    )
    # 409: the lines are well-formed; what refuses them is the catalogue and the calendar
    assert response.status_code == 409
    assert response.json()["type"].endswith("invalid-stock-lines")
    errors = response.json()["errors"]
    assert [e["line"] for e in errors] == [0, 1, 2]
    assert "batch number and an expiry date" in errors[0]["message"]
    assert "expired" in errors[1]["message"]
    assert await site.stock() == {}  # nothing half-written


async def test_receipt_input_is_strict(site: Site) -> None:
    food = await site.item(ItemCategory.FOOD)
    url = f"/v1/warehouses/{site.warehouse_id}/receipts"
    for line in (
        {"sku": food, "quantity": 0},
        {"sku": food, "quantity": 2.5},
        {"sku": food, "quantity": "3"},
        {"sku": food, "quantity": 10_000_000},
        {"sku": food, "quantity": 1, "batch": "X", "expires_on": "31/12/2025"},
        {"sku": food, "quantity": 1, "batch": "X", "expires_on": 1767139200},
    ):
        response = await site.client.post(
            url, json={"lines": [line], "reference": "R"}, headers=site.operator
        )
        assert response.status_code == 422, line
    unknown = await site.client.post(
        url,
        json={"lines": [{"sku": "NOPE-9", "quantity": 1}], "reference": "R"},
        headers=site.operator,
    )
    assert unknown.status_code == 422 and unknown.json()["skus"] == ["NOPE-9"]
    nowhere = await site.client.post(
        f"/v1/warehouses/{uuid.uuid4()}/receipts",
        json={"lines": [{"sku": food, "quantity": 1}], "reference": "R"},
        headers=site.operator,
    )
    assert nowhere.status_code == 404 and nowhere.json()["type"].endswith("warehouse-not-found")
    managers_do_not_receive = await site.client.post(
        url, json={"lines": [{"sku": food, "quantity": 1}], "reference": "R"}, headers=site.manager
    )
    assert managers_do_not_receive.status_code == 403


async def test_a_batch_cannot_change_its_expiry_date(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5, batch="LOT-1", expires_on="2025-09-01")
    response = await site.receive(sku, 5, batch="LOT-1", expires_on="2025-10-01")
    assert response.status_code == 409
    assert response.json()["type"].endswith("batch-expiry-mismatch")
    assert (await site.stock())[sku]["on_hand"] == 5


async def test_a_transfer_moves_batches_with_their_expiry(site: Site) -> None:
    sku = await site.item(ItemCategory.HYGIENE)
    await site.receive(sku, 4, batch="SOON", expires_on="2025-04-01")
    await site.receive(sku, 10, batch="LATER", expires_on="2025-08-01")
    target = await site.warehouse()
    response = await site.client.post(
        "/v1/transfers",
        json={
            "from_warehouse_id": site.warehouse_id,
            "to_warehouse_id": target,
            "lines": [{"sku": sku, "quantity": 6}],
            "reference": "TR-1",
        },
        headers=site.operator,
    )
    assert response.status_code == 201, response.text
    movements = response.json()["movements"]
    assert [(m["kind"], m["batch"], m["quantity"]) for m in movements] == [
        ("transfer_out", "SOON", -4),
        ("transfer_in", "SOON", 4),
        ("transfer_out", "LATER", -2),
        ("transfer_in", "LATER", 2),
    ]
    assert len({m["transfer_id"] for m in movements}) == 1
    arrived = (await site.stock(target))[sku]
    assert [(b["batch"], b["expires_on"], b["quantity"]) for b in arrived["batches"]] == [
        ("SOON", "2025-04-01", 4),
        ("LATER", "2025-08-01", 2),
    ]
    too_much = await site.client.post(
        "/v1/transfers",
        json={
            "from_warehouse_id": site.warehouse_id,
            "to_warehouse_id": target,
            "lines": [{"sku": sku, "quantity": 9}],
            "reference": "TR-2",
        },
        headers=site.operator,
    )
    assert too_much.status_code == 409
    assert too_much.json()["shortfalls"] == [
        {"line": 0, "sku": sku, "batch": None, "requested": 9, "available": 8}
    ]
    assert await ledger_mismatches(site.service) == []


async def test_a_transfer_to_another_sites_warehouse_needs_that_site_too(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    elsewhere = f"OTHER-{uuid.uuid4().hex[:6]}"
    target = (
        await site.client.post(
            "/v1/warehouses",
            json={"name": "Far", "site_id": elsewhere, "location": {"admin1": "MD02"}},
            headers=site.admin,
        )
    ).json()["id"]
    body = {
        "from_warehouse_id": site.warehouse_id,
        "to_warehouse_id": target,
        "lines": [{"sku": sku, "quantity": 1}],
        "reference": "TR-3",
    }
    refused = await site.client.post("/v1/transfers", json=body, headers=site.operator)
    assert refused.status_code == 404 and refused.json()["warehouse_id"] == target
    both = auth_headers(Role.WAREHOUSE_OPERATOR, sites=[site.site_id, elsewhere])
    assert (await site.client.post("/v1/transfers", json=body, headers=both)).status_code == 201


async def test_adjustments_carry_a_reason_and_never_go_below_zero(site: Site) -> None:
    sku = await site.stocked(ItemCategory.NON_FOOD_ITEM, 10)
    url = f"/v1/warehouses/{site.warehouse_id}/adjustments"
    damaged = await site.client.post(
        url,
        json={"lines": [{"sku": sku, "quantity": -3, "reason": "damaged"}], "reference": "CNT-1"},
        headers=site.operator,
    )
    assert damaged.status_code == 201
    assert damaged.json()["movements"][0]["reason"] == "damaged"
    too_many = await site.client.post(
        url,
        json={
            "lines": [
                {"sku": sku, "quantity": 2, "reason": "found"},
                {"sku": sku, "quantity": -10, "reason": "lost"},
            ]
        },
        headers=site.operator,
    )
    assert too_many.status_code == 409
    assert too_many.json()["shortfalls"][0]["available"] == 9
    no_reason = await site.client.post(
        url, json={"lines": [{"sku": sku, "quantity": -1}]}, headers=site.operator
    )
    assert no_reason.status_code == 422
    zero = await site.client.post(
        url, json={"lines": [{"sku": sku, "quantity": 0, "reason": "lost"}]}, headers=site.operator
    )
    assert zero.status_code == 422
    unknown_batch = await site.client.post(
        url,
        json={"lines": [{"sku": sku, "batch": "NOPE", "quantity": 1, "reason": "found"}]},
        headers=site.operator,
    )
    # 409, not 422: whether a batch is held here is a matter of data, not of the request
    assert unknown_batch.status_code == 409
    assert (
        unknown_batch.json()["errors"][0]["message"] == "this batch is not held in this warehouse"
    )
    assert (await site.stock())[sku]["on_hand"] == 7
    assert await ledger_mismatches(site.service) == []


async def test_stock_low_is_published_when_a_balance_crosses_below_its_reorder_level(
    site: Site, stock_topic: TopicReader
) -> None:
    sku = await site.stocked(ItemCategory.HYGIENE, 12)
    await site.client.put(
        f"/v1/warehouses/{site.warehouse_id}/reorder-levels/{sku}",
        json={"reorder_level": 10},
        headers=site.manager,
    )
    url = f"/v1/warehouses/{site.warehouse_id}/adjustments"

    async def remove(quantity: int) -> None:
        response = await site.client.post(
            url,
            json={"lines": [{"sku": sku, "quantity": -quantity, "reason": "damaged"}]},
            headers=site.operator,
        )
        assert response.status_code == 201

    await remove(2)  # 12 -> 10: at the level, not below
    await remove(1)  # 10 -> 9: crosses
    await remove(1)  # 9 -> 8: already below, no new event
    events = await stock_topic.wait_for(lambda r: r.data.get("sku") == sku)
    await stock_topic.settle(1.0)
    events = [r for r in stock_topic.records if r.data.get("sku") == sku]
    assert len(events) == 1
    (event,) = events
    assert event.type == "StockLow" and event.key == site.warehouse_id
    assert event.data["balance"] == 9 and event.data["reorder_level"] == 10
    assert event.data["site_id"] == site.site_id and event.data["category"] == "hygiene"
    assert (await site.stock())[sku]["below_reorder_level"] is True


async def test_days_of_cover_come_from_the_last_seven_days_of_issues(site: Site) -> None:
    sku = await site.stocked(ItemCategory.HYGIENE, 100)
    for _ in range(2):  # 7 units 8 days ago (outside the window) ...
        household = await site.household(size=7)
        site.service.clock.advance(days=-8)
        assert (await site.distribute(household, [{"sku": sku, "quantity": 7}])).status_code == 201
        site.service.clock.advance(days=8)
    for _ in range(2):  # ... and 2 x 7 units within it
        household = await site.household(size=7)
        assert (await site.distribute(household, [{"sku": sku, "quantity": 7}])).status_code == 201
    item = (await site.stock())[sku]
    assert item["issued_last_days"] == 14
    assert item["daily_issue_rate"] == 2.0
    assert item["days_of_cover"] == 36.0  # 72 left / 2 a day


async def test_the_ledger_pages_newest_first_with_an_opaque_cursor(site: Site) -> None:
    sku = await site.item(ItemCategory.FOOD)
    for quantity in range(1, 6):
        await site.receive(sku, quantity)
    url = f"/v1/warehouses/{site.warehouse_id}/ledger"
    first = (await site.client.get(url, params={"limit": 2}, headers=site.manager)).json()
    assert [e["quantity"] for e in first["items"]] == [5, 4]
    second = (
        await site.client.get(
            url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=site.manager
        )
    ).json()
    assert [e["quantity"] for e in second["items"]] == [3, 2]
    last = (
        await site.client.get(
            url, params={"limit": 2, "cursor": second["next_cursor"]}, headers=site.manager
        )
    ).json()
    assert [e["quantity"] for e in last["items"]] == [1] and last["next_cursor"] is None
    bad = await site.client.get(url, params={"cursor": "not-a-cursor"}, headers=site.manager)
    assert bad.status_code == 400 and bad.json()["type"].endswith("invalid-cursor")
    assert (
        await site.client.get(url, params={"limit": 500}, headers=site.manager)
    ).status_code == 422


async def test_a_delivery_note_is_received_once_per_warehouse(site: Site) -> None:
    sku = await site.item(ItemCategory.HYGIENE)
    first = await site.receive(sku, 30, reference="GRN-2026-0042")
    assert first.status_code == 201, first.text
    again = await site.receive(sku, 30, reference="GRN-2026-0042")
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "urn:haven:problem:receipt-already-recorded"
    stock = await site.client.get(
        f"/v1/warehouses/{site.warehouse_id}/stock", headers=site.operator
    )
    assert [s["on_hand"] for s in stock.json()["items"] if s["sku"] == sku] == [30]

"""Under concurrency nothing is oversold and no entitlement is exceeded: many operators on one
SKU of one warehouse, several desks serving the same household at the same moment, and racing
re-sends — each with at least 50 simultaneous requests against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import sqlalchemy as sa

from services.distribution.models import ItemCategory
from shared.auth import Role
from tests.distribution.support import Site, ledger_mismatches
from tests.support.tokens import auth_headers

REQUESTS = 60


async def db_rows(site: Site, query: str, **params: Any) -> list[Any]:
    async with site.service.runtime.engine.connect() as conn:
        return list((await conn.execute(sa.text(query), params)).all())


async def test_many_operators_on_one_sku_never_oversell(site: Site) -> None:
    stock = 40
    sku = await site.stocked(ItemCategory.FOOD, stock)
    households = [await site.household() for _ in range(REQUESTS)]
    operators = [
        auth_headers(Role.WAREHOUSE_OPERATOR, sites=[site.site_id]) for _ in range(REQUESTS)
    ]

    responses = await asyncio.gather(
        *(
            site.distribute(household, [{"sku": sku, "quantity": 1}], headers=operator)
            for household, operator in zip(households, operators, strict=True)
        )
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: stock, 409: REQUESTS - stock}, statuses
    refused = [r.json() for r in responses if r.status_code == 409]
    assert {p["type"] for p in refused} == {"urn:haven:problem:insufficient-stock"}
    item = (await site.stock())[sku]
    assert (item["on_hand"], item["available"]) == (0, 0)
    assert await ledger_mismatches(site.service) == []
    (issued,) = await db_rows(
        site,
        "SELECT count(*), -sum(quantity) FROM stock_ledger WHERE sku = :sku AND kind = 'issue'",
        sku=sku,
    )
    assert tuple(issued) == (stock, stock)
    (negative,) = await db_rows(site, "SELECT count(*) FROM stock_balance WHERE quantity < 0")
    assert negative[0] == 0


async def test_several_desks_serving_the_same_households_at_once_never_exceed_entitlements(
    site: Site,
) -> None:
    food = await site.stocked(ItemCategory.FOOD, 500)
    kits = await site.stocked(ItemCategory.HYGIENE, 500)
    households = [await site.household(size=4) for _ in range(6)]  # 1 parcel, 4 kits each
    desks = [auth_headers(Role.WAREHOUSE_OPERATOR, sites=[site.site_id]) for _ in range(5)]
    requests = [
        (household, desk, line)
        for household in households
        for desk in desks
        for line in ({"sku": food, "quantity": 1}, {"sku": kits, "quantity": 2})
    ]
    assert len(requests) >= 50

    responses = await asyncio.gather(
        *(site.distribute(h, [line], headers=desk) for h, desk, line in requests)
    )

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    granted: Counter[tuple[str, str]] = Counter()
    for (household, _, line), response in zip(requests, responses, strict=True):
        if response.status_code == 201:
            granted[(household, line["sku"])] += line["quantity"]
        else:
            assert response.json()["type"] == "urn:haven:problem:entitlement-exceeded"
    for household in households:
        assert granted[(household, food)] == 1  # exactly the entitlement: no more, no less
        assert granted[(household, kits)] == 4
    over = await db_rows(
        site,
        """
        SELECT d.household_id, l.category, sum(l.quantity)
        FROM distribution d JOIN distribution_line l ON l.distribution_id = d.id
        WHERE d.site_id = :site_id AND d.status = 'recorded'
        GROUP BY 1, 2
        HAVING (l.category = 'food' AND sum(l.quantity) > 1)
            OR (l.category = 'hygiene' AND sum(l.quantity) > 4)
        """,
        site_id=site.site_id,
    )
    assert over == []
    stock = await site.stock()
    assert stock[food]["on_hand"] == 500 - 6 and stock[kits]["on_hand"] == 500 - 24
    assert await ledger_mismatches(site.service) == []


async def test_racing_resends_of_one_request_record_it_once(site: Site) -> None:
    sku = await site.stocked(ItemCategory.HYGIENE, 100)
    household = await site.household(size=7)
    client_ref = f"desk-3:{uuid.uuid4()}"

    responses = await asyncio.gather(
        *(
            site.distribute(household, [{"sku": sku, "quantity": 2}], client_ref=client_ref)
            for _ in range(REQUESTS)
        )
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1  # the very same body every time
    (count,) = await db_rows(
        site, "SELECT count(*) FROM distribution WHERE client_ref = :ref", ref=client_ref
    )
    assert count[0] == 1
    assert (await site.stock())[sku]["on_hand"] == 98


async def test_one_client_ref_racing_for_two_households_serves_only_one(site: Site) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 10)
    households = [await site.household() for _ in range(2)]
    client_ref = f"desk-9:{uuid.uuid4()}"
    responses = await asyncio.gather(
        *(
            site.distribute(h, [{"sku": sku, "quantity": 1}], client_ref=client_ref)
            for h in households * 10
        )
    )
    winners = {r.json()["household_id"] for r in responses if r.status_code == 201}
    assert len(winners) == 1
    losers = [r for r in responses if r.status_code != 201]
    assert len(losers) == 10
    assert {r.json()["type"] for r in losers} == {"urn:haven:problem:client-ref-reused"}
    assert (await site.stock())[sku]["on_hand"] == 9


async def test_receipts_transfers_adjustments_and_distributions_interleave_consistently(
    site: Site,
) -> None:
    sku = await site.stocked(ItemCategory.HYGIENE, 30)
    second = await site.warehouse()
    await site.receive(sku, 30, warehouse_id=second)
    households = [await site.household(size=2) for _ in range(20)]
    operator = site.operator
    calls = []
    for i, household in enumerate(households):
        warehouse = site.warehouse_id if i % 2 else second
        calls.append(
            site.distribute(household, [{"sku": sku, "quantity": 2}], warehouse_id=warehouse)
        )
    for i in range(15):
        source, target = (site.warehouse_id, second) if i % 2 else (second, site.warehouse_id)
        calls.append(
            site.client.post(
                "/v1/transfers",
                json={
                    "from_warehouse_id": source,
                    "to_warehouse_id": target,
                    "lines": [{"sku": sku, "quantity": 3}],
                    "reference": f"TR-{i}",
                },
                headers=operator,
            )
        )
    for i in range(10):
        calls.append(site.receive(sku, 1, warehouse_id=site.warehouse_id if i % 2 else second))
        calls.append(
            site.client.post(
                f"/v1/warehouses/{second if i % 2 else site.warehouse_id}/adjustments",
                json={"lines": [{"sku": sku, "quantity": -2, "reason": "damaged"}]},
                headers=operator,
            )
        )

    responses = await asyncio.gather(*calls)

    assert {r.status_code for r in responses} <= {201, 409}, [
        r.text for r in responses if r.status_code >= 500
    ]
    distributions, transfers, others = responses[:20], responses[20:35], responses[35:]
    receipts, adjustments = others[0::2], others[1::2]
    assert all(r.status_code == 201 for r in receipts)
    expected = (
        60
        + len(receipts)
        - 2 * sum(r.status_code == 201 for r in distributions)
        - 2 * sum(r.status_code == 201 for r in adjustments)
    )
    assert sum(r.status_code == 201 for r in transfers) > 0
    on_hand = (await site.stock())[sku]["on_hand"] + (await site.stock(second))[sku]["on_hand"]
    assert on_hand == expected
    assert await ledger_mismatches(site.service) == []

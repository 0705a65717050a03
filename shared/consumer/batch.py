"""A fetched batch: its consecutive events applied in one transaction, in partition order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaMessage

from shared import inbox
from shared.consumer.registry import _Decoded
from shared.consumer.retries import OneByOne
from shared.events.catalog import Topic
from shared.events.envelope import headers_to_dict

# One logger for the whole package, named as before it was split into modules.
log = logging.getLogger("shared.consumer")

T = TypeVar("T")

BATCH_SIZE = 100
"""Most records handled in one transaction (and acknowledged with one offset commit)."""
BATCH_WAIT_MS = 50
"""How long an idle subscriber waits for records before polling again (adds at most this
much latency to the first event after a quiet spell)."""
BATCH_LINGER_MS = 20
"""How long a subscriber woken for fewer than ``BATCH_SIZE`` records waits for more before
handling them (0: never). Each batch costs a transaction and an offset commit whatever its
size, so a busy consumer trades this much latency for much less CPU per event."""


def distinct_runs(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """Split ``items`` into consecutive runs in which no key appears twice, in order.

    A set-based statement can touch a row only once (``ON CONFLICT DO UPDATE`` refuses a
    second change to the same row), so a batch with two events of one household is applied
    as two statements, the earlier event first."""
    runs: list[list[T]] = []
    seen: set[Hashable] = set()
    for item in items:
        k = key(item)
        if not runs or k in seen:
            runs.append([])
            seen = set()
        runs[-1].append(item)
        seen.add(k)
    return runs


def _same_handler_runs(items: Sequence[_Decoded]) -> list[list[_Decoded]]:
    """Consecutive events of one batch handler together; every other event alone."""
    groups: list[list[_Decoded]] = []
    for item in items:
        previous = groups[-1][0].handler if groups else None
        if item.handler.batched and previous is item.handler:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


class Batches(OneByOne):
    """Handling a fetched batch: runs of decodable events together, anything else (and a
    failed run) one by one in its place."""

    batch_size: int
    batch_linger_ms: int
    _batch_lock: asyncio.Lock

    async def _gathered(self, msg: KafkaMessage) -> Sequence[ConsumerRecord[bytes, bytes]]:
        """The fetched records plus those that arrive within ``batch_linger_ms``.

        A consumer woken for one or two records pays a transaction (BEGIN, inbox claim,
        COMMIT), an offset commit and FastStream's per-message work for them alone; waiting a
        few milliseconds for the records right behind them shares that cost.
        """
        records: Sequence[ConsumerRecord[bytes, bytes]] = msg.raw_message
        consumer = getattr(msg, "consumer", None)
        if not self.batch_linger_ms or consumer is None or len(records) >= self.batch_size:
            return records
        await asyncio.sleep(self.batch_linger_ms / 1000)
        more = await consumer.getmany(timeout_ms=0, max_records=self.batch_size - len(records))
        if not more:
            return records
        # per partition, the later records follow the earlier ones: order per partition holds
        return [*records, *(record for part in more.values() for record in part)]

    async def process_batch(
        self, topic: Topic, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[str]:
        """Handle fetched records in order; return their outcomes.

        Consecutive decodable events with a handler are applied in one transaction; anything
        else (a tombstone, an unknown or malformed record) takes the one-by-one path in its
        place, so order per partition holds. A catalogued event nobody here handles is
        ignored without ending the run: it has no effect to order. Each record's headers and
        envelope are decoded once, whichever path it takes.
        """
        outcomes: list[str] = []
        run: list[_Decoded] = []
        run_slots: list[int] = []  # where each event of the run goes in ``outcomes``

        async def apply_run() -> None:
            for slot, outcome in zip(run_slots, await self._apply_run(topic, run), strict=True):
                outcomes[slot] = outcome
            run.clear()
            run_slots.clear()

        for record in records:
            headers = headers_to_dict(record.headers or ())
            if self._unhandled(topic, record, headers):  # no effect to order: the run goes on
                outcomes.append(await self._process_one(topic, record, headers, None))
                continue
            decoded = self._decode(topic, record, headers)
            if decoded is None:
                await apply_run()
                outcomes.append(await self._process_one(topic, record, headers, None))
            else:
                run_slots.append(len(outcomes))
                outcomes.append("")
                run.append(decoded)
        await apply_run()
        return outcomes

    async def _apply_run(self, topic: Topic, run: list[_Decoded]) -> list[str]:
        if len(run) <= 1:
            return [await self._process_one(topic, item.record, item.headers, item) for item in run]
        outcomes: list[str] | None = None
        async with self._batch_lock:
            try:
                outcomes = await self._apply_together(topic, run)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "batch failed; handling its events one by one",
                    extra={"topic": topic.name, "events": len(run), "error": type(exc).__name__},
                )
        if outcomes is None:
            return [await self._process_one(topic, item.record, item.headers, item) for item in run]
        for outcome in set(outcomes):
            self._count(topic, outcome, outcomes.count(outcome))
        return outcomes

    async def _apply_together(self, topic: Topic, run: list[_Decoded]) -> list[str]:
        outcomes: list[str] = []
        async with self.sessions() as session, session.begin():
            fresh = await inbox.claim_many(
                session,
                consumer=self.service,
                event_ids=[item.envelope.id for item in run],
                topic=topic.name,
            )
            applied: list[_Decoded] = []
            for item in run:
                if item.envelope.id not in fresh:
                    outcomes.append("duplicate")
                    continue
                fresh.discard(item.envelope.id)  # the same event twice in one batch
                applied.append(item)
                outcomes.append("applied")
            for group in _same_handler_runs(applied):
                handler = group[0].handler
                if handler.batched:
                    with self._batch_span(topic, group):
                        await handler(session, [item.envelope for item in group])
                else:
                    (item,) = group
                    with self._event_span(topic, item.record, item.headers) as span:
                        await handler(session, [item.envelope])
                        span.set_attribute("haven.outcome", "applied")
                # Each handler call starts from the database, as in a session of its own.
                await session.flush()
                session.expunge_all()
        return outcomes

"""Reading the audit trail back from Kafka and checking its hash chains."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from shared.audit_chain import ChainBreak, verify_chain
from shared.events.catalog import AUDIT

POLL_MS = 500
ASSIGNMENT_TIMEOUT_SECONDS = 10.0


async def read_audit_records(bootstrap: str, topic: str = AUDIT.name) -> list[dict[str, Any]]:
    """Every record on the audit topic, from the beginning up to the current end."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + ASSIGNMENT_TIMEOUT_SECONDS
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} not found")
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        records: list[dict[str, Any]] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(*partitions, timeout_ms=POLL_MS)
            for messages in batch.values():
                records.extend(json.loads(m.value) for m in messages if m.value is not None)
        return records
    finally:
        await consumer.stop()


async def verify_topic(bootstrap: str, topic: str = AUDIT.name) -> tuple[int, list[ChainBreak]]:
    """How many records were read, and the first break of each broken chain."""
    records = await read_audit_records(bootstrap, topic)
    return len(records), verify_chain(records)

"""Reading the audit trail back from Kafka and checking its keyed hash chains.

Reading needs no consumer group and commits nothing: a user with Describe and Read on the
audit topic (and nothing else) can verify, over TLS and SASL like the services."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from shared.audit_chain import ChainBreak, ChainKeys, verify_chain
from shared.events.catalog import AUDIT
from shared.kafka import connection_options
from shared.settings import CommonSettings

POLL_MS = 500
ASSIGNMENT_TIMEOUT_SECONDS = 10.0


def reader_options(settings: CommonSettings | None) -> dict[str, Any]:
    """The audit reader's client settings: no group, no commits, the cluster's security."""
    return {
        "group_id": None,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        **connection_options(settings),
    }


async def read_audit_records(
    bootstrap: str, topic: str = AUDIT.name, *, settings: CommonSettings | None = None
) -> list[dict[str, Any]]:
    """Every record on the audit topic, from the beginning up to the current end."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, **reader_options(settings))
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


async def verify_topic(
    bootstrap: str,
    topic: str = AUDIT.name,
    *,
    keys: ChainKeys | None = None,
    settings: CommonSettings | None = None,
) -> tuple[int, list[ChainBreak]]:
    """How many records were read, and the first break of each broken chain (``keys``: the
    services' chain keys; the development keys when not given)."""
    records = await read_audit_records(bootstrap, topic, settings=settings)
    return len(records), verify_chain(records, keys)


class KeysFile:
    """Chain keys from a JSON file ``{"registration": "<key>", ...}``, or from a directory
    of files named by service (a Kubernetes Secret mounted as a volume)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = {service: key.encode() for service, key in keys.items()}

    @classmethod
    def read(cls, path: Path) -> KeysFile:
        if path.is_dir():
            return cls(
                {
                    entry.name: entry.read_text().strip()
                    for entry in path.iterdir()
                    if entry.is_file() and not entry.name.startswith(".")
                }
            )
        return cls(json.loads(path.read_text()))

    def get(self, service: str, /) -> bytes | None:
        return self.keys.get(service)

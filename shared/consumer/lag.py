"""Consumer lag: after each batch handled, and from the group's committed offsets on the broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaMessage
from prometheus_client import Gauge

from shared.kafka import connection_options
from shared.settings import CommonSettings

# One logger for the whole package, named as before it was split into modules.
log = logging.getLogger("shared.consumer")

LAG = Gauge(
    "haven_consumer_lag",
    "Records behind the end of the partition: after each batch handled, and from the group's "
    "committed offsets every few seconds (so a stuck consumer's lag still grows)",
    ["service", "topic", "partition"],
)


def record_lag(
    service: str, msg: KafkaMessage, records: Sequence[ConsumerRecord[bytes, bytes]]
) -> None:
    """Records left behind the last one handled of each partition in the batch."""
    highwater = getattr(getattr(msg, "consumer", None), "highwater", None)
    if highwater is None:
        return
    last = {(r.topic, r.partition): r.offset for r in records}
    for (topic, partition), offset in last.items():
        end = highwater(TopicPartition(topic, partition))
        if end is not None:
            LAG.labels(service, topic, str(partition)).set(max(0, end - offset - 1))


class LagWatcher:
    """Measures a consumer group's lag from the broker: partition ends minus committed offsets.

    The consumer sets the lag after each batch it handles; this watcher also sets it when the
    consumer handles nothing (stuck on an outage, or never started), so the lag still grows
    and "consumer lag growing" can fire.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        service: str,
        group_id: str,
        topics: Sequence[str],
        settings: CommonSettings | None = None,
    ) -> None:
        self.service = service
        self.group_id = group_id
        self.topics = list(topics)
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": f"haven-{service}-lag",
            **connection_options(settings),
        }
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def _connected(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._clients is None:
            admin = AIOKafkaAdminClient(**self._options)
            # No group id: it only reads partition ends, it never joins the service's group.
            ends = AIOKafkaConsumer(**self._options)
            try:
                await admin.start()
                await ends.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await ends.stop()
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._clients = (admin, ends)
        return self._clients

    async def measure(self) -> dict[tuple[str, int], int]:
        """Lag per (topic, partition); a partition the group never committed counts from the
        earliest record still kept (the consumers start there)."""
        admin, ends_client = await self._connected()
        partitions = [
            TopicPartition(described["topic"], partition["partition"])
            for described in await admin.describe_topics(self.topics)
            if described["error_code"] == 0
            for partition in described["partitions"]
        ]
        if not partitions:
            return {}
        committed = await admin.list_consumer_group_offsets(self.group_id)
        ends = await ends_client.end_offsets(partitions)
        unstarted = [tp for tp in partitions if (c := committed.get(tp)) is None or c.offset < 0]
        starts = await ends_client.beginning_offsets(unstarted) if unstarted else {}
        lag: dict[tuple[str, int], int] = {}
        for tp in partitions:
            done = committed.get(tp)
            position = done.offset if done is not None and done.offset >= 0 else starts[tp]
            lag[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
        return lag

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Refresh the lag gauge until ``stop`` is set; Kafka being away only skips a round."""
        try:
            while not stop.is_set():
                try:
                    for (topic, partition), behind in (await self.measure()).items():
                        LAG.labels(self.service, topic, str(partition)).set(behind)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not measure consumer lag", extra={"error": repr(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._clients is not None:
            admin, ends = self._clients
            self._clients = None
            with contextlib.suppress(Exception):
                await ends.stop()
            with contextlib.suppress(Exception):
                await admin.close()

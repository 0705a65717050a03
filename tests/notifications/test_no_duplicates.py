"""At most one message per notification: two sender replicas at once, and a sender killed
with SIGKILL while the SMS gateway holds its request, then restarted."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from haven.devstack.processes import free_port
from services.notifications.channels.base import OutgoingMessage
from services.notifications.channels.sms_gateway import SmsGatewayTransport
from services.notifications.jobs import Sender
from services.notifications.settings import Channel, NotificationsSettings
from shared.consumer import EventConsumer
from shared.db import create_engine, session_factory
from shared.events.catalog import CATALOG
from shared.events.envelope import EventPayload
from tests.notifications import support
from tests.notifications.support import HttpReceiver, rows
from tests.support import eventually, kill_group, start_python
from tests.support.clock import FakeClock
from tests.support.events import envelope as wrap_event


async def deliver(consumer: EventConsumer, payload: EventPayload, key: str) -> None:
    envelope = wrap_event(payload)
    await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, key))


async def queue_confirmations(consumer: EventConsumer, count: int) -> None:
    for _ in range(count):
        household = uuid4()
        await deliver(consumer, support.contact(household), str(household))
        await deliver(consumer, support.registered(household), str(household))


class Counting(SmsGatewayTransport):
    def __init__(self, url: str) -> None:
        super().__init__(url, token=None, sender_id=None, timeout_seconds=5)
        self.count = 0

    async def send(self, message: OutgoingMessage) -> None:
        self.count += 1
        await super().send(message)


async def test_two_sender_replicas_send_each_notification_once(
    consumer: EventConsumer,
    database_url: str,
    engine: AsyncEngine,
    clock: FakeClock,
    settings: NotificationsSettings,
) -> None:
    total = 120
    await queue_confirmations(consumer, total)
    gateway = await HttpReceiver(delay_seconds=0.01).start()
    replicas: list[tuple[Sender, Counting, Any]] = []
    for seed in (1, 2):
        own_engine = create_engine(database_url, pool_size=5)
        transport = Counting(gateway.url)
        sender = Sender(
            engine=own_engine,
            sessions=session_factory(own_engine),
            settings=settings.model_copy(update={"sender_batch_size": 7}),
            transports={Channel.SMS: transport},
            clock=clock,
            rng=random.Random(seed),
        )
        replicas.append((sender, transport, own_engine))
    stop = asyncio.Event()
    loops = [asyncio.create_task(sender.run(stop)) for sender, _, _ in replicas]
    try:

        async def all_delivered() -> bool:
            done = await rows(
                engine, "SELECT count(*) AS n FROM notification WHERE status = 'delivered'"
            )
            return bool(done[0].n == total)

        await eventually(all_delivered, timeout=60, what="every notification delivered")
    finally:
        stop.set()
        await asyncio.gather(*loops)
        for _, _, own_engine in replicas:
            await own_engine.dispose()
        await gateway.stop()

    keys = gateway.keys()
    assert len(keys) == total
    assert len(set(keys)) == total  # no notification was sent twice
    assert len(gateway.delivered) == total
    counts = [transport.count for _, transport, _ in replicas]
    assert sum(counts) == total and min(counts) > 0, counts  # both replicas really worked
    attempts = await rows(engine, "SELECT DISTINCT attempts FROM notification")
    assert [a.attempts for a in attempts] == [1]
    delivered_events = await rows(
        engine,
        "SELECT count(*) AS n FROM outbox WHERE headers @> CAST(:h AS jsonb)",
        h=json.dumps([["ce_type", "NotificationDelivered"]]),
    )
    assert delivered_events[0].n == total


async def test_a_sender_killed_mid_send_resends_with_the_same_key_and_delivers_once(
    consumer: EventConsumer,
    database_url: str,
    engine: AsyncEngine,
    clock: FakeClock,
    infra: Any,
    tmp_path: Path,
) -> None:
    clock.now = datetime.now(UTC) - timedelta(minutes=1)  # the subprocess runs on real time
    household = uuid4()
    await deliver(consumer, support.contact(household), str(household))
    await deliver(consumer, support.registered(household), str(household))
    (queued,) = await rows(
        engine, "SELECT id FROM notification WHERE household_id = :h", h=household
    )

    gateway = await HttpReceiver(hold=asyncio.Event()).start()
    env = {
        "HAVEN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "HAVEN_NOTIFICATIONS_DATABASE_URL": database_url,
        "HAVEN_NOTIFICATIONS_HTTP_PORT": str(free_port()),
        "HAVEN_NOTIFICATIONS_CONSUMERS_ENABLED": "false",
        "HAVEN_NOTIFICATIONS_RELAY_ENABLED": "false",
        "HAVEN_NOTIFICATIONS_SMS_TRANSPORT": "gateway",
        "HAVEN_NOTIFICATIONS_SMS_GATEWAY_URL": gateway.url + "/sms",
        "HAVEN_NOTIFICATIONS_SMS_GATEWAY_TIMEOUT_SECONDS": "2",
        "HAVEN_NOTIFICATIONS_SMTP_TIMEOUT_SECONDS": "2",
        "HAVEN_NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS": "2",
        "HAVEN_NOTIFICATIONS_SENDER_BATCH_SIZE": "1",
        "HAVEN_NOTIFICATIONS_SENDER_CONCURRENCY": "1",
        "HAVEN_NOTIFICATIONS_SENDING_LEASE_SECONDS": "3",
        "HAVEN_NOTIFICATIONS_QUIET_HOURS_ENABLED": "false",
    }
    log = tmp_path / "notifications.log"
    first = start_python("services.notifications", log=log, env=env)
    try:
        await asyncio.wait_for(gateway.arrived.wait(), timeout=45)
        kill_group(first, signal.SIGKILL)  # dies between sending and recording
        (held,) = await rows(
            engine, "SELECT status, attempts FROM notification WHERE id = :i", i=queued.id
        )
        assert (held.status, held.attempts) == ("sending", 1)
        assert len(gateway.requests) == 1
    finally:
        kill_group(first, signal.SIGKILL)
        assert gateway.hold is not None
        gateway.hold.set()
    gateway.hold = None

    second = start_python("services.notifications", log=log, env=env)
    try:

        async def delivered() -> bool:
            found = await rows(engine, "SELECT status FROM notification WHERE id = :i", i=queued.id)
            return bool(found[0].status == "delivered")

        await eventually(delivered, timeout=45, what="the notification delivered after restart")
    except AssertionError:
        pytest.fail("not delivered after restart:\n" + log.read_text(errors="replace")[-3000:])
    finally:
        kill_group(second, signal.SIGTERM)
        await gateway.stop()

    assert gateway.keys() == [str(queued.id), str(queued.id)]  # the same idempotency key
    assert len(gateway.delivered) == 1  # which the gateway honoured: one SMS
    (final,) = await rows(
        engine, "SELECT status, attempts FROM notification WHERE id = :i", i=queued.id
    )
    assert (final.status, final.attempts) == ("delivered", 2)
    announced = await rows(
        engine,
        "SELECT count(*) AS n FROM outbox WHERE headers @> CAST(:h AS jsonb)",
        h=json.dumps([["ce_type", "NotificationDelivered"]]),
    )
    assert announced[0].n == 1
    logged = log.read_text(errors="replace")
    assert "notification attempt" in logged
    assert "+37360123412" not in logged and "Номер справи" not in logged  # never logged

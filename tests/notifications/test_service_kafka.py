"""The whole service on the real broker: events published as the other services publish them
(the confirmation arriving before its contact, a redelivery, a tombstone, an erasure), SMS
through a local gateway, a signed webhook to a local receiver, outcomes on the topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.service import create_app
from services.notifications.settings import NotificationsSettings
from shared.auth import Role
from shared.events.catalog import CATALOG, CONTACTS, NOTIFICATIONS
from shared.events.envelope import Envelope, EventPayload
from tests.notifications import support
from tests.notifications.support import HttpReceiver, make_settings, rows
from tests.support import (
    create_catalog_topics,
    eventually,
    read_topic_to_end,
    start_group_at_end,
    unique,
)
from tests.support.apps import serving
from tests.support.events import envelope as wrap_event
from tests.support.tokens import auth_headers

ADMIN = auth_headers(Role.ADMIN, sub="admin")


@pytest.fixture
async def producer(infra: Any) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    yield producer
    await producer.stop()


async def publish(producer: AIOKafkaProducer, payload: EventPayload, key: UUID) -> Envelope[Any]:
    envelope = wrap_event(payload)
    await publish_envelope(producer, envelope, key)
    return envelope


async def publish_envelope(producer: AIOKafkaProducer, envelope: Envelope[Any], key: UUID) -> None:
    await producer.send_and_wait(
        CATALOG.topic_for(envelope.data).name,
        envelope.kafka_value(),
        key=str(key).encode(),
        headers=envelope.kafka_headers(),
    )


async def test_events_on_the_broker_become_delivered_messages_once(
    infra: Any, database_url: str, engine: AsyncEngine, producer: AIOKafkaProducer
) -> None:
    bootstrap = infra.kafka_bootstrap
    await create_catalog_topics(bootstrap)
    name = unique("notifications")  # its own consumer group
    gateway = await HttpReceiver().start()
    hooks = await HttpReceiver().start()
    settings: NotificationsSettings = make_settings(
        database_url,
        bootstrap,
        sms_transport="gateway",
        sms_gateway_url=gateway.url + "/sms",
        webhook_transport="http",
        webhook_allowed_networks=["127.0.0.0/8"],  # the local receiver, explicitly
        quiet_hours_enabled=False,
        sender_poll_seconds=0.2,
        relay_poll_seconds=0.2,
        consumer_group=f"haven-{name}",
    )
    await start_group_at_end(
        bootstrap,
        f"haven-{name}",
        [t.name for t in CATALOG.consumed_by("notifications")],
    )
    app = create_app(settings)
    household, other = uuid4(), uuid4()
    try:
        async with serving(app, base_url="http://notifications") as client:
            hook = {
                "role": "warehouse_manager",
                "site_id": "MDA-CHI",
                "channel": "webhook",
                "address": hooks.url + "/haven",
            }
            assert (
                await client.post("/v1/staff-recipients", json=hook, headers=ADMIN)
            ).status_code == 201
            await asyncio.wait_for(app.state.runtime.broker_started.wait(), timeout=30)

            # the confirmation first, its contact later (different topics), then a redelivery
            confirmation = await publish(producer, support.registered(household), household)
            await asyncio.sleep(0.5)
            await publish(producer, support.contact(household, language="ro"), household)
            await publish_envelope(producer, confirmation, household)
            await publish(producer, support.stock_low("MDA-CHI"), uuid4())

            async def mine() -> list[Any]:
                """Gateway requests for this household's notification (other tests may share
                the broker and send their own)."""
                ids = await rows(
                    engine, "SELECT id FROM notification WHERE household_id = :h", h=household
                )
                keys = {str(row.id) for row in ids}
                return [r for r in gateway.requests if r.headers.get("idempotency-key") in keys]

            async def sent() -> bool:
                return len(await mine()) >= 1 and len(hooks.delivered) >= 1

            await eventually(sent, timeout=45, what="the SMS and the webhook")
            await asyncio.sleep(0.5)  # a second SMS would have arrived by now
            (request,) = await mine()
            sms = json.loads(request.body)
            assert sms["to"] == "+37360123412"
            assert "gospodăria dumneavoastră a fost înregistrată" in sms["text"]
            assert "MDA-PAL-000123" in sms["text"]
            assert json.loads(hooks.requests[0].body)["subject"] == "Stock low at MDA-CHI: HYG-KIT"
            assert hooks.requests[0].headers["x-haven-signature"].startswith("sha256=")

            (delivered,) = await rows(
                engine,
                "SELECT id, status, segments FROM notification WHERE household_id = :h",
                h=household,
            )
            assert delivered.status == "delivered" and delivered.segments >= 1

            async def announced() -> bool:
                records = await read_topic_to_end(bootstrap, NOTIFICATIONS.name)
                ids = {json.loads(r.value)["notification_id"] for r in records if r.value}
                return str(delivered.id) in ids

            await eventually(announced, timeout=30, what="NotificationDelivered on the topic")

            # a tombstone on the compacted topic removes the contact; erasure removes the rest
            await publish(producer, support.contact(other), other)
            await publish(producer, support.registered(other), other)
            await producer.send_and_wait(CONTACTS.name, None, key=str(other).encode())

            async def forgotten() -> bool:
                found = await rows(
                    engine, "SELECT 1 FROM notification_contact WHERE household_id = :h", h=other
                )
                return not found and bool(
                    await rows(
                        engine, "SELECT 1 FROM notification WHERE household_id = :h", h=other
                    )
                )

            await eventually(forgotten, timeout=30, what="the tombstone applied")
            await publish(producer, support.erased(household), household)

            async def erased() -> bool:
                return not await rows(
                    engine, "SELECT 1 FROM notification WHERE household_id = :h", h=household
                )

            await eventually(erased, timeout=30, what="the erasure applied")
            await client.aclose()
    finally:
        await gateway.stop()
        await hooks.stop()

"""Delivery with a controlled clock: backoff with jitter, dead letters and the admin retry,
permanent failures, the rate limit, quiet hours, lost leases, broken templates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.channels.base import PermanentChannelError, TransientChannelError
from services.notifications.channels.sms_gateway import SmsGatewayTransport
from services.notifications.domain import delivery, notifications, recipients
from services.notifications.jobs import Sender
from services.notifications.models import StaffRecipientCreate
from services.notifications.settings import Channel, NotificationsSettings, StaffRole, TokenBucket
from shared.consumer import EventConsumer
from shared.db import SessionFactory
from shared.events.catalog import CATALOG
from shared.events.envelope import EventPayload
from tests.notifications import support
from tests.notifications.support import HttpReceiver, RecordingTransport, rows
from tests.support import eventually
from tests.support.clock import FakeClock
from tests.support.events import envelope as wrap_event


async def deliver(consumer: EventConsumer, payload: EventPayload, key: UUID | str) -> None:
    envelope = wrap_event(payload)
    await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, str(key)))


async def registered_with_contact(consumer: EventConsumer, **contact: Any) -> UUID:
    household = uuid4()
    await deliver(consumer, support.contact(household, **contact), household)
    await deliver(consumer, support.registered(household), household)
    return household


async def notification(engine: AsyncEngine, household: UUID) -> Any:
    (row,) = await rows(engine, "SELECT * FROM notification WHERE household_id = :h", h=household)
    return row


async def outbox(engine: AsyncEngine, event_type: str) -> list[dict[str, Any]]:
    found = await rows(
        engine,
        "SELECT value FROM outbox WHERE headers @> CAST(:h AS jsonb) ORDER BY id",
        h=json.dumps([["ce_type", event_type]]),
    )
    return [json.loads(r.value) for r in found]


async def test_retries_back_off_with_jitter_then_die_and_an_admin_retry_delivers(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    gateway = await HttpReceiver(statuses=[503, 500, 502]).start()
    sms = SmsGatewayTransport(gateway.url, token=None, sender_id=None, timeout_seconds=5)
    sender = sender_for(settings, {Channel.SMS: sms})
    household = await registered_with_contact(consumer)
    try:
        assert await sender.run_once() == 1
        first = await notification(engine, household)
        assert (first.status, first.attempts, first.last_error) == ("failed", 1, "http_503")
        delay = first.next_attempt_at - clock.now
        assert timedelta(seconds=5) <= delay <= timedelta(seconds=10)  # ceiling 10 s, jittered

        clock.advance(seconds=4)
        assert await sender.run_once() == 0  # not due yet
        clock.now = first.next_attempt_at
        assert await sender.run_once() == 1
        second = await notification(engine, household)
        assert (second.status, second.attempts, second.last_error) == ("failed", 2, "http_500")
        delay = second.next_attempt_at - clock.now
        assert timedelta(seconds=10) <= delay <= timedelta(seconds=20)  # the ceiling doubled

        clock.now = second.next_attempt_at
        assert await sender.run_once() == 1
        dead = await notification(engine, household)
        assert (dead.status, dead.attempts, dead.last_error) == ("dead", 3, "http_502")
        (announced,) = await outbox(engine, "NotificationDead")
        assert announced["notification_id"] == str(dead.id)
        assert (announced["attempts"], announced["error_code"]) == (3, "http_502")
        assert "+3736" not in json.dumps(announced)
        clock.advance(hours=1)
        assert await sender.run_once() == 0  # dead stays dead

        async with sessions() as session, session.begin():
            await notifications.retry(
                session=session, principal=support.admin(), notification_id=dead.id, now=clock()
            )
        assert await sender.run_once() == 1
        delivered = await notification(engine, household)
        assert (delivered.status, delivered.attempts) == ("delivered", 1)
        assert delivered.delivered_at == clock.now
        (announced,) = await outbox(engine, "NotificationDelivered")
        assert announced["notification_id"] == str(dead.id)
        assert announced["source_event_type"] == "HouseholdRegistered"
        assert announced["household_id"] == str(household)
    finally:
        await sms.aclose()
        await gateway.stop()
    assert gateway.keys() == [str(dead.id)] * 4  # one idempotency key across every attempt
    assert len(gateway.delivered) == 1


async def test_a_permanent_failure_is_dead_at_once(
    consumer: EventConsumer,
    engine: AsyncEngine,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    failing = RecordingTransport([PermanentChannelError("http_400")])
    sender = sender_for(settings, {Channel.SMS: failing})
    household = await registered_with_contact(consumer)
    await sender.run_once()
    dead = await notification(engine, household)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, "http_400")


async def test_the_rate_limit_holds_the_channel_to_its_bucket(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    settings_for: Callable[..., NotificationsSettings],
    sender_for: Callable[..., Sender],
) -> None:
    limited = settings_for(
        sms_transport="gateway",  # the file transport is not rate limited
        sms_gateway_url="http://gateway.invalid/sms",
        rate_limits={Channel.SMS: TokenBucket(per_second=0.5, burst=3)},
    )
    transport = RecordingTransport()
    sender = sender_for(limited, {Channel.SMS: transport})
    for _ in range(6):
        await registered_with_contact(consumer)
    assert await sender.run_once() == 3  # the burst
    assert await sender.run_once() == 0
    clock.advance(seconds=1)
    assert await sender.run_once() == 0  # half a token
    clock.advance(seconds=1)
    assert await sender.run_once() == 1
    clock.advance(seconds=60)
    assert await sender.run_once() == 2  # refilled up to the burst, two were left
    assert len(transport.sent) == 6
    assert {r.status for r in await rows(engine, "SELECT status FROM notification")} == {
        "delivered"
    }


async def test_quiet_hours_hold_beneficiary_sms_but_staff_alerts_go_at_once(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    clock.now = support.MORNING.replace(hour=21)  # 23:00 in Chișinău
    entry = StaffRecipientCreate(
        role=StaffRole.WAREHOUSE_MANAGER,
        site_id="MDA-CHI",
        channel=Channel.EMAIL,
        address="wh@example.org",
    )
    async with sessions() as session, session.begin():
        await recipients.add_staff(
            session=session, entry=entry, principal=support.admin("t"), now=clock()
        )
    sms, email = RecordingTransport(), RecordingTransport()
    sender = sender_for(settings, {Channel.SMS: sms, Channel.EMAIL: email})
    household = await registered_with_contact(consumer)
    await deliver(consumer, support.stock_low("MDA-CHI"), uuid4())
    await sender.run_once()
    assert len(email.sent) == 1 and email.sent[0].subject == "Stock low at MDA-CHI: HYG-KIT"
    held = await notification(engine, household)
    assert held.status == "queued" and held.attempts == 0
    assert held.next_attempt_at == support.MORNING.replace(day=16, hour=6)  # 08:00 local
    clock.now = held.next_attempt_at - timedelta(seconds=1)
    await sender.run_once()
    assert sms.sent == []
    clock.now = held.next_attempt_at
    await sender.run_once()
    assert len(sms.sent) == 1


async def test_a_lost_lease_is_claimed_again_and_only_the_holder_records(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    settings: NotificationsSettings,
) -> None:
    household = await registered_with_contact(consumer)
    async with sessions() as session, session.begin():
        (stale,) = await delivery.claim_due(
            session=session, channel=Channel.SMS, settings=settings, now=clock(), limit=10
        )
    async with sessions() as session, session.begin():  # held: nobody else may take it
        assert (
            await delivery.claim_due(
                session=session, channel=Channel.SMS, settings=settings, now=clock(), limit=10
            )
            == []
        )
    clock.advance(seconds=settings.sending_lease_seconds)
    async with sessions() as session, session.begin():
        (fresh,) = await delivery.claim_due(
            session=session, channel=Channel.SMS, settings=settings, now=clock(), limit=10
        )
    assert fresh.message.idempotency_key == stale.message.idempotency_key
    assert fresh.attempt == 2
    async with sessions() as session, session.begin():
        assert not await delivery.record_delivered(session=session, claim=stale, now=clock())
        assert (
            await delivery.record_failure(
                session=session,
                claim=stale,
                error=TransientChannelError("x"),
                settings=settings,
                now=clock(),
            )
            is None
        )
        assert await delivery.record_delivered(session=session, claim=fresh, now=clock())
    row = await notification(engine, household)
    assert (row.status, row.attempts) == ("delivered", 2)


async def test_a_template_that_cannot_render_kills_the_notification_with_the_reason(
    consumer: EventConsumer,
    engine: AsyncEngine,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text(
                "UPDATE notification_template SET body = '{{ provider_hours }}' "
                "WHERE event_type = 'HouseholdRegistered'"
            )
        )
    transport = RecordingTransport()
    household = await registered_with_contact(consumer, language="ro")
    await sender_for(settings, {Channel.SMS: transport}).run_once()
    dead = await notification(engine, household)
    assert dead.status == "dead"
    assert dead.last_error.startswith("template_error: UndefinedError")
    assert transport.sent == []
    (announced,) = await outbox(engine, "NotificationDead")
    assert announced["error_code"] == "template_error"


async def test_one_claim_renders_each_language_and_a_round_records_only_lease_holders(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    settings: NotificationsSettings,
) -> None:
    # Romanian has its own template; French has none, so the English fallback is used.
    romanian = await registered_with_contact(consumer, language="ro")
    french = await registered_with_contact(consumer, language="fr")
    async with sessions() as session, session.begin():
        stale = await delivery.claim_due(
            session=session, channel=Channel.SMS, settings=settings, now=clock(), limit=10
        )
    languages = {c.message.household_id: c.message.language for c in stale}
    assert languages == {romanian: "ro", french: "en"}
    assert all("MDA-PAL-000123" in c.message.body for c in stale)
    clock.advance(seconds=settings.sending_lease_seconds)
    async with sessions() as session, session.begin():
        fresh = await delivery.claim_due(
            session=session, channel=Channel.SMS, settings=settings, now=clock(), limit=10
        )
    bodies = {c.message.household_id: c.message.body for c in stale}
    assert {c.message.household_id: c.message.body for c in fresh} == bodies  # kept as rendered
    stale_romanian = next(c for c in stale if c.message.household_id == romanian)
    fresh_french = next(c for c in fresh if c.message.household_id == french)
    async with sessions() as session, session.begin():
        recorded = await delivery.record_all_delivered(
            session=session, claims=[stale_romanian, fresh_french], now=clock()
        )
    assert recorded == {fresh_french.notification_id}
    assert (await notification(engine, romanian)).status == "sending"  # its holder records
    assert (await notification(engine, french)).status == "delivered"
    (announced,) = await outbox(engine, "NotificationDelivered")
    assert announced["notification_id"] == str(fresh_french.notification_id)


async def test_messages_queued_close_together_are_sent_in_one_round(
    consumer: EventConsumer,
    engine: AsyncEngine,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    transport = RecordingTransport()
    sender = sender_for(
        settings.model_copy(update={"sender_gather_seconds": 1.0, "sender_poll_seconds": 30.0}),
        {Channel.SMS: transport},
    )
    rounds: list[int] = []
    run_once = sender.run_once

    async def counted() -> int:
        sent = await run_once()
        rounds.append(sent)
        return sent

    sender.run_once = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.create_task(sender.run(stop))
    try:
        await eventually(lambda: _true(rounds), timeout=10, what="the first, empty round")
        # three registrations, each its own transaction and NOTIFY, within the gathering time
        households = [await registered_with_contact(consumer) for _ in range(3)]
        await eventually(lambda: _true(len(transport.sent) == 3), timeout=20, what="the three SMS")
    finally:
        stop.set()
        await loop
    assert [sent for sent in rounds if sent] == [3]
    assert {m.household_id for m in transport.sent} == set(households)


async def _true(value: object) -> bool:
    return bool(value)

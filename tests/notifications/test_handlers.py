"""From events to notifications: ordering, consent, tombstones, erasure, redelivery, staff
routing — each record handled by the service's handlers as the consumer would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain import intake, recipients
from services.notifications.jobs import Sender
from services.notifications.models import StaffRecipientCreate
from services.notifications.settings import Channel, NotificationsSettings, StaffRole
from shared.consumer import EventConsumer
from shared.db import SessionFactory
from shared.events.catalog import CATALOG, CONTACTS
from shared.events.envelope import Envelope, EventPayload
from tests.notifications import support
from tests.notifications.support import RecordingTransport, rows
from tests.support.clock import FakeClock
from tests.support.events import envelope as wrap_event

NOTIFICATION_COLUMNS = (
    "status, skip_reason, attempts, next_attempt_at, contact_deadline, recipient_masked, "
    "language, encoding, segments, body"
)


async def deliver(consumer: EventConsumer, payload: EventPayload, key: UUID | str) -> str:
    envelope = wrap_event(payload)
    return await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, str(key)))


async def notifications_of(engine: AsyncEngine, household_id: UUID) -> list[Any]:
    return await rows(
        engine,
        f"SELECT {NOTIFICATION_COLUMNS}, event_type FROM notification "
        "WHERE household_id = :h ORDER BY created_at, id",
        h=household_id,
    )


def recording_sender(
    sender_for: Callable[..., Sender], settings: NotificationsSettings
) -> tuple[Sender, RecordingTransport]:
    sms = RecordingTransport()
    return sender_for(settings, {Channel.SMS: sms}), sms


async def test_registration_before_its_contact_waits_then_goes_when_the_contact_arrives(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    household = uuid4()
    assert await deliver(consumer, support.registered(household), household) == "applied"
    (waiting,) = await notifications_of(engine, household)
    assert waiting.status == "queued"
    assert waiting.next_attempt_at == clock.now.replace() + _seconds(600)
    assert waiting.contact_deadline == waiting.next_attempt_at

    sender, sms = recording_sender(sender_for, settings)
    assert await sender.run_once() == 0  # not due: it waits for the contact

    clock.advance(seconds=30)
    await deliver(consumer, support.contact(household, language="uk"), household)
    (due,) = await notifications_of(engine, household)
    assert due.next_attempt_at == clock.now  # due at once

    assert await sender.run_once() == 1
    (sent,) = await notifications_of(engine, household)
    assert sent.status == "delivered"
    assert sent.attempts == 1
    assert sent.recipient_masked == "+3736*****12"
    assert (sent.language, sent.encoding) == ("uk", "ucs2")
    assert sent.segments == 2
    (message,) = sms.sent
    assert message.address == "+37360123412"
    assert message.idempotency_key is not None
    assert "Номер справи: MDA-PAL-000123" in message.body


async def test_a_contact_that_never_comes_ends_skipped_no_contact_after_the_wait(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    household = uuid4()
    await deliver(consumer, support.registered(household), household)
    sender, sms = recording_sender(sender_for, settings)
    clock.advance(seconds=599)
    await sender.run_once()
    assert (await notifications_of(engine, household))[0].status == "queued"
    clock.advance(seconds=1)
    await sender.run_once()
    (skipped,) = await notifications_of(engine, household)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "no_contact")
    assert sms.sent == []


async def test_no_consent_or_no_phone_is_skipped_with_the_reason(
    consumer: EventConsumer, engine: AsyncEngine
) -> None:
    refused, without_phone = uuid4(), uuid4()
    await deliver(consumer, support.contact(refused, consent=False), refused)
    await deliver(consumer, support.registered(refused), refused)
    await deliver(consumer, support.contact(without_phone, phone=None), without_phone)
    await deliver(consumer, support.registered(without_phone), without_phone)
    (first,) = await notifications_of(engine, refused)
    (second,) = await notifications_of(engine, without_phone)
    assert (first.status, first.skip_reason) == ("skipped", "no_consent")
    assert (second.status, second.skip_reason) == ("skipped", "no_phone")


async def test_registration_without_contact_consent_is_skipped_at_once(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    # Registration publishes no contact without consent: nothing to wait for.
    household = uuid4()
    await deliver(consumer, support.registered(household, contact_consent=False), household)
    await deliver(consumer, support.distribution(household), household)
    first, second = await notifications_of(engine, household)
    assert {(first.status, first.skip_reason), (second.status, second.skip_reason)} == {
        ("skipped", "no_consent")
    }
    # a household registered with consent whose contact is late still waits for it
    waiting = uuid4()
    await deliver(consumer, support.registered(waiting), waiting)
    assert (await notifications_of(engine, waiting))[0].status == "queued"


async def test_consent_withdrawn_after_queueing_is_honoured_when_sending(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    household = uuid4()
    quiet = settings.model_copy(update={"quiet_hours_enabled": True})
    await deliver(consumer, support.contact(household), household)
    clock.now = support.MORNING.replace(hour=20)  # 22:00 in Chișinău: quiet hours
    await deliver(consumer, support.distribution(household), household)
    sender, sms = recording_sender(sender_for, quiet)
    await sender.run_once()
    (deferred,) = await notifications_of(engine, household)
    assert deferred.status == "queued"  # waits for 08:00 local = 06:00 UTC
    assert deferred.next_attempt_at == support.MORNING.replace(day=16, hour=6)

    await deliver(consumer, support.contact(household, consent=False), household)
    clock.now = support.MORNING.replace(day=16, hour=6)
    await sender.run_once()
    (skipped,) = await notifications_of(engine, household)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "no_consent")
    assert sms.sent == []


async def test_a_tombstone_deletes_the_contact_and_skips_what_was_waiting(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    household = uuid4()
    await deliver(consumer, support.contact(household), household)
    await deliver(consumer, support.registered(household), household)
    sender, _ = recording_sender(sender_for, settings)
    await sender.run_once()  # the confirmation goes out
    await deliver(consumer, support.referral_sent(household), household)  # this one waits

    outcome = await consumer.process(CONTACTS, support.tombstone_of(CONTACTS.name, str(household)))
    assert outcome == "tombstone"
    assert (
        await rows(
            engine, "SELECT 1 FROM notification_contact WHERE household_id = :h", h=household
        )
        == []
    )
    delivered, withdrawn = await notifications_of(engine, household)
    assert delivered.status == "delivered"
    assert (withdrawn.status, withdrawn.skip_reason) == ("skipped", "contact_withdrawn")
    assert delivered.recipient_masked is None and withdrawn.recipient_masked is None
    # later beneficiary events wait for a contact that will not come
    await deliver(consumer, support.referral_accepted(household), household)
    assert (await notifications_of(engine, household))[-1].status == "queued"
    # a tombstone with a key that is not a household id is ignored, not an error
    assert await consumer.process(CONTACTS, support.tombstone_of(CONTACTS.name, "x")) == "tombstone"


async def test_erasure_removes_everything_about_the_household_for_good(
    consumer: EventConsumer, engine: AsyncEngine, sessions: SessionFactory, clock: FakeClock
) -> None:
    household = uuid4()
    await _staff(sessions, clock, StaffRole.FIELD_SUPERVISOR, "MDA-PAL", "sup@example.org")
    await deliver(consumer, support.contact(household), household)
    await deliver(consumer, support.registered(household), household)
    await deliver(consumer, support.duplicate_review(household), household)
    assert len(await notifications_of(engine, household)) == 2

    await deliver(consumer, support.erased(household), household)
    assert await notifications_of(engine, household) == []
    for table in ("notification_contact", "notification_household"):
        assert (
            await rows(engine, f"SELECT 1 FROM {table} WHERE household_id = :h", h=household) == []
        )
    # late or replayed events bring nothing back
    await deliver(consumer, support.contact(household), household)
    await deliver(consumer, support.distribution(household), household)
    await deliver(consumer, support.registered(household), household)
    await deliver(consumer, support.duplicate_review(household), household)
    assert await notifications_of(engine, household) == []
    for table in ("notification_contact", "notification_household"):
        assert (
            await rows(engine, f"SELECT 1 FROM {table} WHERE household_id = :h", h=household) == []
        )


async def test_a_redelivered_event_creates_one_notification(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    settings: NotificationsSettings,
    clock: FakeClock,
) -> None:
    household = uuid4()
    await deliver(consumer, support.contact(household), household)
    envelope = Envelope.wrap(support.distribution(household), source="haven/distribution")
    topic = CATALOG.topic_for(envelope.data)
    record = support.record_of(envelope, str(household))
    assert await consumer.process(topic, record) == "applied"
    assert await consumer.process(topic, record) == "duplicate"  # the inbox
    # and even past the inbox (e.g. after it was pruned) the unique key holds
    for _ in range(2):
        async with sessions() as session, session.begin():
            await intake.notify(session=session, envelope=envelope, settings=settings, now=clock())
    assert len(await notifications_of(engine, household)) == 1


async def test_staff_alerts_reach_the_directory_by_role_and_site(
    consumer: EventConsumer, engine: AsyncEngine, sessions: SessionFactory, clock: FakeClock
) -> None:
    household, provider = uuid4(), uuid4()
    await _staff(sessions, clock, StaffRole.WAREHOUSE_MANAGER, "MDA-CHI", "wh-chi@example.org")
    await _staff(sessions, clock, StaffRole.WAREHOUSE_MANAGER, "MDA-OCN", "wh-ocn@example.org")
    await _staff(sessions, clock, StaffRole.WAREHOUSE_MANAGER, "*", "logistics@example.org")
    await _staff(
        sessions, clock, StaffRole.PROVIDER_CONTACT, "*", "clinic@example.org", provider=provider
    )
    await _staff(sessions, clock, StaffRole.CASEWORKER, "MDA-PAL", "cw-pal@example.org")
    await _staff(sessions, clock, StaffRole.CASEWORKER, "MDA-CHI", "cw-chi@example.org")
    await _staff(
        sessions,
        clock,
        StaffRole.MANAGER,
        "MDA-PAL",
        "https://ops.example.org/hook",
        Channel.WEBHOOK,
    )

    await deliver(consumer, support.stock_low("MDA-CHI"), uuid4())
    stock = await rows(
        engine,
        "SELECT address, channel, site_id, status FROM notification WHERE event_type = 'StockLow' "
        "ORDER BY address",
    )
    assert [r.address for r in stock] == ["logistics@example.org", "wh-chi@example.org"]
    assert {(r.channel, r.site_id, r.status) for r in stock} == {("email", "MDA-CHI", "queued")}

    # these referral events carry no site: it comes from the household's registration
    await deliver(consumer, support.registered(household, site_id="MDA-PAL"), household)
    for tier in (1, 2, 3, 4):  # no audience named: by tier
        await deliver(
            consumer, support.escalated(household, tier=tier, provider_id=provider), household
        )
    await deliver(consumer, support.overdue(household), household)
    routed = await rows(
        engine,
        "SELECT event_type, context->>'tier' AS tier, address, context->>'case_number' AS case "
        "FROM notification WHERE household_id = :h AND audience = 'staff' ORDER BY created_at, id",
        h=household,
    )
    assert [(r.event_type, r.tier, r.address) for r in routed] == [
        ("ReferralEscalated", "1", "clinic@example.org"),
        ("ReferralEscalated", "2", "cw-pal@example.org"),
        ("ReferralEscalated", "3", "https://ops.example.org/hook"),
        ("ReferralEscalated", "4", "https://ops.example.org/hook"),
        ("ReferralOverdue", None, "cw-pal@example.org"),
    ]
    assert {r.case for r in routed} == {"MDA-PAL-000123"}


async def test_escalations_follow_the_audience_and_the_named_caseworker(
    consumer: EventConsumer, engine: AsyncEngine, sessions: SessionFactory, clock: FakeClock
) -> None:
    household = uuid4()
    await _staff(sessions, clock, StaffRole.CASEWORKER, "MDA-OCN", "ana@example.org", sub="ana")
    await _staff(sessions, clock, StaffRole.CASEWORKER, "MDA-OCN", "ion@example.org", sub="ion")
    await _staff(sessions, clock, StaffRole.MANAGER, "MDA-OCN", "lead@example.org")
    await deliver(consumer, support.registered(household, site_id="MDA-OCN"), household)
    # the referral service says who: tier numbers do not matter then
    await deliver(
        consumer,
        support.escalated(household, tier=1, audience="manager"),
        household,
    )
    await deliver(
        consumer,
        support.escalated(household, tier=2, audience="caseworker", caseworker_sub="ion"),
        household,
    )
    await deliver(
        consumer,
        support.escalated(household, tier=2, audience="caseworker", caseworker_sub="unlisted"),
        household,
    )
    routed = await rows(
        engine,
        "SELECT address FROM notification WHERE household_id = :h AND audience = 'staff' "
        "ORDER BY id",
        h=household,
    )
    assert [r.address for r in routed] == [
        "lead@example.org",
        "ion@example.org",  # only the supervising caseworker
        "ana@example.org",  # not in the directory: every caseworker of the site
        "ion@example.org",
    ]


async def test_a_merge_moves_history_and_skips_what_was_pending(
    consumer: EventConsumer, engine: AsyncEngine
) -> None:
    from shared.events.registration import HouseholdsMerged

    surviving, merged = uuid4(), uuid4()
    await deliver(consumer, support.registered(merged), merged)  # waits for a contact
    await deliver(
        consumer,
        HouseholdsMerged(surviving_id=surviving, merged_id=merged, site_id="MDA-PAL"),
        merged,
    )
    assert await notifications_of(engine, merged) == []
    (moved,) = await notifications_of(engine, surviving)
    assert (moved.status, moved.skip_reason) == ("skipped", "merged")


async def _staff(
    sessions: SessionFactory,
    clock: FakeClock,
    role: StaffRole,
    site_id: str,
    address: str,
    channel: Channel = Channel.EMAIL,
    provider: UUID | None = None,
    sub: str | None = None,
) -> None:
    entry = StaffRecipientCreate(
        role=role,
        site_id=site_id,
        channel=channel,
        address=address,
        provider_id=provider,
        staff_sub=sub,
    )
    async with sessions() as session, session.begin():
        await recipients.add_staff(
            session=session, entry=entry, principal=support.admin("test"), now=clock()
        )


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)

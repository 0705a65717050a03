"""A consumer batch of household and message events, applied set-based: the same database
as the events one by one, and the household lock still serialising a registration with its
contact consumed at the same moment. (What a batch costs in statements:
test_intake_costs.py.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications import handlers
from services.notifications.domain import households, intake, recipients
from services.notifications.models import StaffRecipientCreate
from services.notifications.settings import Channel, NotificationsSettings, StaffRole
from shared.consumer import EventConsumer, RetryPolicy
from shared.db import SessionFactory, create_engine, session_factory
from shared.events.catalog import CONTACTS, HOUSEHOLDS
from shared.events.envelope import EventPayload
from shared.events.registration import (
    HouseholdProfile,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)
from shared.kafka import LazyProducer
from tests.notifications import support
from tests.notifications.support import HandlerRuntime, rows
from tests.support import unique
from tests.support.clock import FakeClock
from tests.support.events import envelope


def _profile(
    kind: type[HouseholdProfile],
    household_id: UUID,
    version: int,
    *,
    site_id: str = "MDA-PAL",
    contact_consent: bool = True,
) -> HouseholdProfile:
    base = support.registered(household_id, site_id=site_id, contact_consent=contact_consent)
    return kind(**(base.model_dump() | {"version": version, "case_number": f"{site_id}-{version}"}))


def _record(payload: EventPayload, key: UUID) -> Any:
    return support.record_of(envelope(payload), str(key))


@pytest.fixture
async def twin(
    template_database: str, settings: NotificationsSettings, clock: FakeClock, infra: Any
) -> AsyncIterator[tuple[EventConsumer, AsyncEngine]]:
    """A second database with its own consumer of the same handlers and clock."""
    url = await support.clone(template_database)
    engine = create_engine(url, pool_size=5)
    dead_letters = LazyProducer(infra.kafka_bootstrap, client_id=unique("notif-test"))
    consumer = EventConsumer(
        service=unique("notifications"),
        sessions=session_factory(engine),
        dead_letters=dead_letters,
        retry=RetryPolicy(max_attempts=1, initial_backoff_seconds=0.01),
    )
    handlers.register(consumer, HandlerRuntime(settings, clock))
    yield consumer, engine
    await dead_letters.stop()
    await engine.dispose()
    await support.drop(url)


async def _state(engine: AsyncEngine) -> dict[str, list[Any]]:
    """Everything the consumer writes, without the notifications' random ids."""
    return {
        "households": await rows(engine, "SELECT * FROM notification_household ORDER BY 1"),
        "contacts": await rows(engine, "SELECT * FROM notification_contact ORDER BY 1"),
        "erasures": await rows(engine, "SELECT * FROM notification_erasure ORDER BY 1"),
        "notifications": await rows(
            engine,
            "SELECT event_id, event_type, household_id, site_id, audience, recipient_key, "
            "channel, address, recipient_masked, language, context, status, skip_reason, "
            "attempts, next_attempt_at, contact_deadline, created_at, updated_at "
            "FROM notification ORDER BY event_id, recipient_key",
        ),
    }


async def _add_supervisor(sessions: SessionFactory, clock: FakeClock) -> None:
    entry = StaffRecipientCreate(
        role=StaffRole.FIELD_SUPERVISOR,
        site_id="MDA-PAL",
        channel=Channel.EMAIL,
        address="sup@example.org",
    )
    async with sessions() as session, session.begin():
        await recipients.add_staff(
            session=session, entry=entry, principal=support.admin("test"), now=clock()
        )


async def test_a_mixed_batch_leaves_what_its_events_one_by_one_leave(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    twin: tuple[EventConsumer, AsyncEngine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    one_by_one, twin_engine = twin
    a, b, c, d, e, f, p = (uuid4() for _ in range(7))
    before = [
        (CONTACTS, _record(support.contact(a), a)),
        (CONTACTS, _record(support.contact(c, consent=False), c)),
        (HOUSEHOLDS, _record(_profile(HouseholdUpdated, p, 3, site_id="MDA-CHI"), p)),
        (HOUSEHOLDS, _record(_profile(HouseholdRegistered, e, 1), e)),
        (HOUSEHOLDS, _record(support.erased(e), e)),
    ]
    batch = [
        _record(_profile(HouseholdRegistered, a, 1), a),  # contact known: due now
        _record(_profile(HouseholdRegistered, b, 1, contact_consent=False), b),  # no consent
        _record(_profile(HouseholdRegistered, f, 1, contact_consent=False), f),
        _record(_profile(HouseholdUpdated, a, 2, site_id="MDA-CHI"), a),  # newer: a new run
        _record(_profile(HouseholdUpdated, f, 2), f),  # consents later: its SMS was decided
        _record(_profile(HouseholdUpdated, p, 2), p),  # older than the one held: ignored
        _record(_profile(HouseholdRegistered, e, 1), e),  # erased: stays erased, no SMS
        _record(support.duplicate_review(b), b),  # a staff alert between the profiles
        _record(_profile(HouseholdRegistered, c, 1), c),  # contact without consent
        _record(_profile(NeedsAssessed, a, 3), a),
        _record(support.erased(b), b),  # one-by-one handler inside the batch
        _record(_profile(HouseholdUpdated, b, 2), b),  # after its erasure: nothing
        _record(_profile(HouseholdRegistered, d, 1), d),  # no contact yet: waits
        _record(HouseholdsMerged(surviving_id=a, merged_id=d, site_id="MDA-PAL"), d),
        _record(_profile(VulnerabilitiesFlagged, d, 2), d),
        _record(_profile(HouseholdRegistered, a, 1), a),  # a replayed old version, new event
    ]
    await _add_supervisor(sessions, clock)
    await _add_supervisor(session_factory(twin_engine), clock)
    for topic, record in before:
        assert await consumer.process(topic, record) == "applied"
        assert await one_by_one.process(topic, record) == "applied"

    with caplog.at_level(logging.WARNING, logger="shared.consumer"):
        assert await consumer.process_batch(HOUSEHOLDS, batch) == ["applied"] * len(batch)
    assert not [r for r in caplog.records if "one by one" in r.getMessage()]  # no fallback
    for record in batch:
        assert await one_by_one.process(HOUSEHOLDS, record) == "applied"

    together, alone = await _state(engine), await _state(twin_engine)
    assert together == alone
    assert {h.household_id: h.version for h in together["households"]} == {
        a: 3,
        p: 3,
        c: 1,
        d: 2,
        f: 2,
    }
    assert len(together["notifications"]) == 5  # a twice, c, d (moved to a), f; b erased
    assert {(n.household_id, n.status, n.skip_reason) for n in together["notifications"]} == {
        (a, "queued", None),
        (c, "skipped", "no_consent"),
        (f, "skipped", "no_consent"),
        (a, "skipped", "merged"),
    }


async def _blocked(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is still waiting a moment later (on a lock held elsewhere)."""
    await asyncio.sleep(0.5)
    return not task.done()


async def test_a_registration_batch_waits_for_a_contact_being_saved_and_sees_it(
    consumer: EventConsumer, engine: AsyncEngine, sessions: SessionFactory, clock: FakeClock
) -> None:
    """The contact's transaction holds the household's lock; the batch (the household among
    others) waits for it, and its SMS then sees the contact: due at once, not waiting."""
    household = uuid4()
    others = [uuid4() for _ in range(4)]
    records = [_record(support.registered(h), h) for h in [*others[:2], household, *others[2:]]]
    async with sessions() as contact_session, contact_session.begin():
        await households.save_contact(
            session=contact_session, contact=support.contact(household), at=clock()
        )
        batch = asyncio.create_task(consumer.process_batch(HOUSEHOLDS, records))
        assert await _blocked(batch)
    assert await batch == ["applied"] * len(records)
    (sms,) = await rows(
        engine,
        "SELECT status, contact_deadline, recipient_masked FROM notification "
        "WHERE household_id = :h",
        h=household,
    )
    assert (sms.status, sms.contact_deadline) == ("queued", None)
    assert sms.recipient_masked is not None


async def test_a_contact_waits_for_a_registration_batch_and_wakes_its_sms(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    settings: NotificationsSettings,
    clock: FakeClock,
) -> None:
    """The other way round: the batch's transaction holds the locks; the contact waits, then
    makes the confirmation (queued to wait for it) due at once."""
    household = uuid4()
    envelopes = [envelope(support.registered(h)) for h in [uuid4(), household, uuid4()]]
    async with sessions() as batch_session, batch_session.begin():
        await intake.take_profiles(
            session=batch_session, envelopes=envelopes, settings=settings, now=clock()
        )
        contact = asyncio.create_task(
            consumer.process(CONTACTS, _record(support.contact(household), household))
        )
        assert await _blocked(contact)
    assert await contact == "applied"
    (sms,) = await rows(
        engine,
        "SELECT status, next_attempt_at FROM notification WHERE household_id = :h",
        h=household,
    )
    assert (sms.status, sms.next_attempt_at) == ("queued", clock.now)


async def test_an_erasure_waits_for_a_message_being_queued_and_deletes_it(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    settings: NotificationsSettings,
    clock: FakeClock,
) -> None:
    """A message queued for the household in a transaction still open holds its lock; the
    erasure waits for it and then deletes that message too (without the lock its DELETE
    would not see the uncommitted row, which would survive the erasure)."""
    household = uuid4()
    await consumer.process(HOUSEHOLDS, _record(support.registered(household), household))
    await consumer.process(CONTACTS, _record(support.contact(household), household))
    async with sessions() as message_session, message_session.begin():
        await intake.notify_all(
            session=message_session,
            envelopes=[envelope(support.distribution(household))],
            settings=settings,
            now=clock(),
        )
        erasure = asyncio.create_task(
            consumer.process(HOUSEHOLDS, _record(support.erased(household), household))
        )
        assert await _blocked(erasure)
    assert await erasure == "applied"
    left = await rows(engine, "SELECT id FROM notification WHERE household_id = :h", h=household)
    assert left == []

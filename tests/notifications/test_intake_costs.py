"""What queueing costs: the statements the notifications consumer sends per registered
household, and the one-statement beneficiary decision agreeing with the Python rules."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain.masking import mask
from services.notifications.domain.recipients import unreachable_because
from services.notifications.models import Contact, HouseholdSite, SkipReason
from services.notifications.settings import Channel
from shared.consumer import EventConsumer
from shared.events.catalog import CONTACTS, HOUSEHOLDS, REFERRALS
from tests.notifications import support
from tests.notifications.support import rows
from tests.support import sent_statements
from tests.support.clock import FakeClock
from tests.support.events import envelope

HOUSEHOLDS_IN_BATCH = 20


def _record(payload: Any, household_id: Any) -> Any:
    return support.record_of(envelope(payload), str(household_id))


async def test_a_registered_household_costs_few_statements_per_topic(
    consumer: EventConsumer, engine: AsyncEngine
) -> None:
    """A batch of registrations: the sites upserted with the households' locks, then the
    SMS decided and queued, both for the whole batch. Contacts: per household the lock, then
    the contact saved. Referrals sent: the households' locks, then their SMS, for the whole
    batch. The batch's inbox claim (and for contacts the wake-up) is shared."""
    ids = [uuid4() for _ in range(HOUSEHOLDS_IN_BATCH)]
    statements: Counter[str] = Counter()
    for name, records in (
        (HOUSEHOLDS, [_record(support.registered(h), h) for h in ids]),
        (CONTACTS, [_record(support.contact(h), h) for h in ids]),
        (REFERRALS, [_record(support.referral_sent(h), h) for h in ids]),
    ):
        with sent_statements(engine) as sent:
            outcomes = await consumer.process_batch(name, records)
        assert outcomes == ["applied"] * HOUSEHOLDS_IN_BATCH
        statements[name.name] = len(sent)
    shared_per_batch = 2  # the inbox claim, one wake-up
    assert statements[HOUSEHOLDS.name] == 1 + 2  # the inbox claim, sites + locks, SMS
    assert statements[CONTACTS.name] <= 2 * HOUSEHOLDS_IN_BATCH + shared_per_batch
    assert statements[REFERRALS.name] == 1 + 2  # the inbox claim, locks, SMS
    queued = await rows(
        engine,
        "SELECT count(*) AS n FROM notification WHERE household_id = ANY(:ids) "
        "AND status = 'queued' AND contact_deadline IS NULL",
        ids=ids,
    )
    assert queued[0].n == HOUSEHOLDS_IN_BATCH  # the referral SMS, due at once


CASES = [
    # (contact given?, phone, contact consent, registration's consent flag or None)
    (False, None, False, None),
    (False, None, False, True),
    (False, None, False, False),
    (True, "+37360123412", True, True),
    (True, "+37360123412", False, True),
    (True, None, True, True),
    (True, "", True, True),
    (True, "0037360123412", True, True),
    (True, "+3736", True, True),
    (True, "+373601", True, True),
    (True, "+3736012", True, True),
    (True, "+380671234567", True, False),
    (True, "+1234567890123456", True, True),
    (True, "+37360123412\n", True, True),
]


@pytest.mark.parametrize(("has_contact", "phone", "consent", "registered_consent"), CASES)
async def test_the_queued_sms_follows_unreachable_because_and_mask(
    consumer: EventConsumer,
    engine: AsyncEngine,
    clock: FakeClock,
    has_contact: bool,
    phone: str | None,
    consent: bool,
    registered_consent: bool | None,
) -> None:
    household = uuid4()
    site = contact = None
    if registered_consent is not None:
        site = HouseholdSite(
            household_id=household,
            site_id="MDA-PAL",
            case_number="MDA-PAL-000123",
            contact_consent=registered_consent,
            version=1,
        )
        registration = support.registered(household, contact_consent=registered_consent)
        await consumer.process(HOUSEHOLDS, _record(registration, household))
    if has_contact:
        contact = Contact(
            household_id=household,
            case_number="MDA-PAL-000123",
            site_id="MDA-PAL",
            phone=phone,
            language="uk",
            contact_consent=consent,
            updated_at=clock.now,
        )
        card = support.contact(household, phone=phone, consent=consent)
        await consumer.process(CONTACTS, _record(card, household))
    await consumer.process(REFERRALS, _record(support.referral_sent(household), household))

    (row,) = await rows(
        engine,
        "SELECT status, skip_reason, recipient_masked, contact_deadline FROM notification "
        "WHERE household_id = :h AND event_type = 'ReferralSent'",
        h=household,
    )
    reason = unreachable_because(contact, site)
    expected_status = "skipped" if reason not in (None, SkipReason.NO_CONTACT) else "queued"
    assert row.status == expected_status
    assert row.skip_reason == (None if expected_status == "queued" else reason)
    assert (row.contact_deadline is not None) == (reason is SkipReason.NO_CONTACT)
    assert row.recipient_masked == (mask(Channel.SMS, phone) if phone else None)

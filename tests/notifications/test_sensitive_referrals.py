"""Referrals to sensitive services (issue 15, item 8): no template — default or edited by an
admin — can print the service type, because the context templates get does not hold it."""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain import recipients, templates
from services.notifications.domain.default_templates import DEFAULT_TEMPLATES, LANGUAGES
from services.notifications.domain.errors import TemplateInvalid
from services.notifications.domain.messages import MESSAGES, is_sensitive
from services.notifications.jobs import Sender
from services.notifications.models import StaffRecipientCreate
from services.notifications.settings import Channel, NotificationsSettings, StaffRole
from shared.consumer import EventConsumer
from shared.db import SessionFactory
from shared.events.catalog import CATALOG
from shared.events.envelope import EventPayload
from shared.events.referral import SENSITIVE_SERVICE_TYPES, ReferralEvent
from tests.notifications import support
from tests.notifications.support import RecordingTransport, rows
from tests.support.clock import FakeClock
from tests.support.events import envelope as wrap_event

HOUSEHOLD = uuid4()
# Everything an admin could try to print about the referral.
NOSY = (
    "{{ service_type }} {{ urgency }} {{ status }} {{ referral_id }} {{ provider_id }} "
    "{{ site_id }} {{ case_number }}"
)


def referral_events(service_type: str) -> list[ReferralEvent]:
    """One event of each message that concerns a referral, for ``service_type``; the
    payload's own ``sensitive`` flag is left False: the shared list must decide."""
    events: list[ReferralEvent] = [
        support.referral_sent(HOUSEHOLD),
        support.referral_accepted(HOUSEHOLD),
        support.overdue(HOUSEHOLD),
        support.escalated(HOUSEHOLD, tier=3),
    ]
    return [e.model_copy(update={"service_type": service_type}) for e in events]


def context_of(payload: EventPayload) -> dict[str, object]:
    return MESSAGES[payload.event_type].context(payload) | {
        "case_number": "MDA-PAL-000123",
        "site_id": "MDA-PAL",
    }


@pytest.mark.parametrize("service_type", sorted(SENSITIVE_SERVICE_TYPES))
def test_a_sensitive_referrals_context_does_not_hold_its_type(service_type: str) -> None:
    for payload in referral_events(service_type):
        assert is_sensitive(payload)
        context = MESSAGES[payload.event_type].context(payload)
        dumped = json.dumps(context).lower()
        assert service_type not in dumped and "traffick" not in dumped
        assert context["service_type"] == "protection"
        assert context["provider_id"] is None
        assert "Clinica" not in dumped
        rendered = templates.render(NOSY, context_of(payload))
        assert "traffick" not in rendered.lower()


def test_the_payload_flag_alone_also_makes_a_referral_sensitive() -> None:
    flagged = support.referral_sent(HOUSEHOLD, service_type="psychosocial", sensitive=True)
    assert MESSAGES["ReferralSent"].context(flagged)["service_type"] == "protection"
    ordinary = support.referral_sent(HOUSEHOLD, service_type="psychosocial")
    assert MESSAGES["ReferralSent"].context(ordinary)["service_type"] == "psychosocial"


def test_staff_alerts_cannot_even_tell_a_sensitive_referral_from_a_protection_one() -> None:
    for event_type in ("ReferralOverdue", "ReferralEscalated"):
        kind = MESSAGES[event_type]
        assert "sensitive" not in kind.variables()
        with pytest.raises(TemplateInvalid):
            templates.check(kind, subject=None, body="{% if sensitive %}CT{% endif %}")
    sensitive, protection = referral_events("counter_trafficking"), referral_events("protection")
    for secret, plain in zip(sensitive[2:], protection[2:], strict=True):
        same = {"referral_id": secret.referral_id, "provider_id": None}
        plain = plain.model_copy(update=same)
        assert context_of(secret) == context_of(plain)


def test_default_staff_alerts_say_protection_in_each_language() -> None:
    words = {"en": "protection", "uk": "захист", "ru": "защита", "ro": "protecție"}
    for payload in referral_events("counter_trafficking")[2:]:
        for language in LANGUAGES:
            template = DEFAULT_TEMPLATES[(payload.event_type, language)]
            assert template.subject is not None
            subject = templates.render(template.subject, context_of(payload))
            body = templates.render(template.body, context_of(payload))
            assert words[language] in subject and words[language] in body
            assert "traffick" not in (subject + body).lower()
    # other service types still print as before
    legal = support.overdue(HOUSEHOLD)
    subject = templates.render(
        DEFAULT_TEMPLATES[("ReferralOverdue", "uk")].subject or "", context_of(legal)
    )
    assert subject == "Направлення прострочено: legal (normal)"


async def test_an_admins_template_cannot_print_the_type_of_a_sensitive_referral(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    household = uuid4()
    entry = StaffRecipientCreate(
        role=StaffRole.CASEWORKER,
        site_id="MDA-PAL",
        channel=Channel.EMAIL,
        address="cw@example.org",
    )
    async with sessions() as session, session.begin():
        await recipients.add_staff(
            session=session, entry=entry, principal=support.admin(), now=clock()
        )
        for language in LANGUAGES:
            await templates.put(
                session=session,
                event_type="ReferralOverdue",
                language=language,
                subject="{{ service_type }}",
                body=NOSY,
                principal=support.admin(),
                now=clock(),
            )
    await _deliver(consumer, support.registered(household, site_id="MDA-PAL"))
    overdue = support.overdue(household).model_copy(update={"service_type": "counter_trafficking"})
    await _deliver(consumer, overdue)

    stored = await rows(
        engine, "SELECT context::text AS c FROM notification WHERE address IS NOT NULL"
    )
    assert len(stored) == 1 and "traffick" not in stored[0].c
    email = RecordingTransport()
    sender = sender_for(settings, {Channel.EMAIL: email})
    assert await sender.run_once() == 1
    (message,) = email.sent
    assert message.subject == "protection"
    assert "traffick" not in f"{message.subject} {message.body}".lower()
    assert str(overdue.referral_id) in message.body  # the alert still says which referral


async def _deliver(consumer: EventConsumer, payload: EventPayload) -> None:
    envelope = wrap_event(payload)
    key = str(getattr(payload, "household_id", uuid4()))
    await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, key))

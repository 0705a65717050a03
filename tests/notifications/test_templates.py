# ruff: noqa: RUF001  (Cyrillic and Romanian text under test)
"""Templates: the defaults for every message in four languages, validation, the sandbox."""

from __future__ import annotations

import unicodedata
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain import templates
from services.notifications.domain.default_templates import DEFAULT_TEMPLATES, LANGUAGES
from services.notifications.domain.errors import TemplateInvalid, UnknownMessageType
from services.notifications.domain.messages import MESSAGES, MessageKind
from services.notifications.domain.sms import Encoding, sms_size
from services.notifications.models import Audience
from shared.db import SessionFactory
from shared.events.distribution import DistributedLine
from shared.events.envelope import EventPayload
from tests.notifications import support

HOUSEHOLD = uuid4()
SAMPLES: dict[str, EventPayload] = {
    "HouseholdRegistered": support.registered(HOUSEHOLD),
    "DistributionRecorded": support.distribution(HOUSEHOLD),
    "ShelterAllocated": support.shelter(HOUSEHOLD),
    "ReferralSent": support.referral_sent(HOUSEHOLD),
    "ReferralAccepted": support.referral_accepted(HOUSEHOLD),
    "StockLow": support.stock_low(),
    "DuplicateReviewRequested": support.duplicate_review(HOUSEHOLD),
    "ReferralOverdue": support.overdue(HOUSEHOLD),
    "ReferralEscalated": support.escalated(HOUSEHOLD, tier=2),
}


def variables(kind: MessageKind) -> dict[str, Any]:
    context = kind.context(SAMPLES[kind.event_type])
    extras: dict[str, Any] = {"case_number": "MDA-PAL-000123"}
    if kind.audience is Audience.STAFF:
        extras["site_id"] = context.get("site_id", "MDA-PAL")
    return context | extras


def render_default(event_type: str, language: str) -> tuple[str | None, str]:
    template = DEFAULT_TEMPLATES[(event_type, language)]
    kind = MESSAGES[event_type]
    subject = templates.render(template.subject, variables(kind)) if template.subject else None
    return subject, templates.render(template.body, variables(kind))


def test_every_message_has_a_default_in_every_language() -> None:
    assert set(SAMPLES) == set(MESSAGES)
    for event_type in MESSAGES:
        for language in LANGUAGES:
            assert (event_type, language) in DEFAULT_TEMPLATES, (event_type, language)
    assert len(DEFAULT_TEMPLATES) == len(MESSAGES) * len(LANGUAGES)


@pytest.mark.parametrize("key", sorted(DEFAULT_TEMPLATES))
def test_default_templates_pass_validation_and_render(key: tuple[str, str]) -> None:
    event_type, language = key
    template = DEFAULT_TEMPLATES[key]
    kind = MESSAGES[event_type]
    templates.check(kind, subject=template.subject, body=template.body)  # only real fields
    subject, body = render_default(event_type, language)
    assert body and "{{" not in body and "{%" not in body
    assert unicodedata.is_normalized("NFC", body)
    if kind.audience is Audience.STAFF:
        assert subject
    else:
        assert subject is None
        assert "MDA-PAL-000123" in body


def test_registration_confirmation_in_four_languages() -> None:
    bodies = {lang: render_default("HouseholdRegistered", lang)[1] for lang in LANGUAGES}
    assert "Case number: MDA-PAL-000123" in bodies["en"]
    assert "вашу родину зареєстровано. Номер справи: MDA-PAL-000123" in bodies["uk"]
    assert "ваша семья зарегистрирована. Номер дела: MDA-PAL-000123" in bodies["ru"]
    assert "gospodăria dumneavoastră a fost înregistrată" in bodies["ro"]
    assert "Păstrați-l și prezentați-l" in bodies["ro"]  # ă, ț, ș survive rendering
    assert sms_size(bodies["en"]).encoding is Encoding.GSM7
    for language in ("uk", "ru", "ro"):
        assert sms_size(bodies[language]).encoding is Encoding.UCS2


def test_receipt_lists_items_in_the_beneficiarys_language() -> None:
    expected = {
        "en": "you received 1 x food parcel, 2 x hygiene kit.",
        "uk": "ви отримали: 1 × продуктовий набір, 2 × гігієнічний набір.",
        "ru": "вы получили: 1 × продуктовый набор, 2 × гигиенический набор.",
        "ro": "ați primit: 1 × pachet alimentar, 2 × set de igienă.",
    }
    for language, text in expected.items():
        assert text in render_default("DistributionRecorded", language)[1]


def test_receipt_adds_up_a_sku_issued_from_several_batches() -> None:
    kind = MESSAGES["DistributionRecorded"]
    split = support.distribution(HOUSEHOLD).model_copy(
        update={
            "lines": (
                DistributedLine(sku="HYG-KIT", category="hygiene", quantity=1, batch="B1"),
                DistributedLine(sku="HYG-KIT", category="hygiene", quantity=2, batch="B2"),
                DistributedLine(sku="PARA-500", category="medication", quantity=1, batch="M7"),
            )
        }
    )
    context = kind.context(split) | {"case_number": "X-1"}
    body = templates.render(DEFAULT_TEMPLATES[("DistributionRecorded", "en")].body, context)
    assert "you received 3 x hygiene kit, 1 x medication." in body


def test_a_referral_tells_where_to_go_in_the_beneficiarys_language() -> None:
    bodies = {lang: render_default("ReferralSent", lang)[1] for lang in LANGUAGES}
    where = "Clinica Sfânta Treime, str. Alba Iulia 75, Chișinău"
    assert bodies["en"].startswith(f"Haven: you have been referred for medical care to {where}, ")
    assert "open Mon-Fri 08:00-17:00, tel. +37322000000." in bodies["en"]
    assert f"медичної допомоги до {where}, години роботи: Mon-Fri" in bodies["uk"]
    assert f"медицинской помощи в {where}, часы работы:" in bodies["ru"]
    assert f"asistență medicală la {where}, program: Mon-Fri" in bodies["ro"]


def test_sensitive_referrals_say_nothing_revealing_to_beneficiaries() -> None:
    kind = MESSAGES["ReferralSent"]
    for service_type, sensitive in (
        ("counter_trafficking", True),
        ("counter_trafficking", False),
        ("medical", True),
    ):
        payload = support.referral_sent(HOUSEHOLD, service_type=service_type, sensitive=sensitive)
        context = kind.context(payload) | {"case_number": "X-1"}
        for language in LANGUAGES:
            body = templates.render(DEFAULT_TEMPLATES[("ReferralSent", language)].body, context)
            assert "trafficking" not in body.lower()
            if sensitive:
                assert "Clinica" not in body and "Alba Iulia" not in body
                assert "medic" not in body.lower() and "медич" not in body.lower()
        english = templates.render(DEFAULT_TEMPLATES[("ReferralSent", "en")].body, context)
        assert "referred for support services" in english


def test_staff_alert_renders_subject_and_numbers() -> None:
    subject, body = render_default("StockLow", "en")
    assert subject == "Stock low at MDA-CHI: HYG-KIT"
    assert "Balance: 12 (reorder level 50)" in body
    assert "Days of cover left: 1.5." in body
    subject, body = render_default("ReferralEscalated", "ro")
    assert subject is not None and "nivelul 2" in subject
    assert "2026-01-14 09:00 UTC" in body
    kind = MESSAGES["ReferralEscalated"]
    stranded = support.escalated(HOUSEHOLD, tier=3, reason_code="no_provider")
    context = kind.context(stranded) | {"case_number": None, "site_id": "MDA-PAL"}
    body = templates.render(DEFAULT_TEMPLATES[("ReferralEscalated", "en")].body, context)
    assert "No provider is left to route it to." in body
    assert "for case" not in body  # no case number known: the phrase is left out


def test_members_vulnerabilities_and_consent_are_not_template_variables() -> None:
    kind = MESSAGES["HouseholdRegistered"]
    assert {"members", "needs", "consent"}.isdisjoint(kind.variables())
    assert "members" not in kind.context(SAMPLES["HouseholdRegistered"])
    with pytest.raises(TemplateInvalid) as info:
        templates.check(kind, subject=None, body="{{ members[0].vulnerabilities }}")
    assert info.value.extensions["errors"][0]["variable"] == "members"


def test_validation_reports_syntax_errors_unknown_variables_and_private_attributes() -> None:
    kind = MESSAGES["StockLow"]
    with pytest.raises(TemplateInvalid) as info:
        templates.check(kind, subject="{{ sku", body="{{ phone }} {{ sku.__class__ }}")
    messages = [e["message"] for e in info.value.extensions["errors"]]
    assert any(m.startswith("syntax error on line 1") for m in messages)
    assert "unknown variable 'phone'" in messages
    assert "private attribute '__class__'" in messages
    assert "sku" in info.value.extensions["allowed_variables"]
    # loop variables, {% set %} names and Jinja's globals are fine
    templates.check(
        kind, subject=None, body="{% set n = balance %}{% for i in range(2) %}{{ n }}{% endfor %}"
    )
    with pytest.raises(UnknownMessageType):
        templates.kind_of("HouseholdUpdated")


def test_sandbox_and_strict_undefined_turn_abuse_into_render_errors() -> None:
    with pytest.raises(templates.RenderError):
        templates.render("{{ missing }}", {})
    with pytest.raises(templates.RenderError):
        templates.render("{{ 'x' * 1000000 }}", {})
    with pytest.raises(templates.RenderError):  # the sandbox refuses private attributes
        templates.render("{{ (sku|attr('__class__')).__mro__ }}", {"sku": "A"})
    assert templates.render("{{ 'ab' * 3 }}", {}) == "ababab"


def test_a_template_text_is_compiled_once_and_an_edited_text_renders_anew() -> None:
    source = f"Case {{{{ case_number }}}} ({uuid4()})"
    misses = templates._compiled.cache_info().misses
    assert templates.render(source, {"case_number": "A-1"}).startswith("Case A-1 (")
    assert templates.render(source, {"case_number": "B-2"}).startswith("Case B-2 (")
    assert templates._compiled.cache_info().misses == misses + 1
    edited = source.replace("Case", "Dosar")
    assert templates.render(edited, {"case_number": "B-2"}).startswith("Dosar B-2 (")
    with pytest.raises(templates.RenderError):  # errors are not remembered as templates
        templates.render("{% if %}", {})
    with pytest.raises(templates.RenderError):
        templates.render("{% if %}", {})


async def test_the_migration_seeds_every_default_and_rendering_falls_back_to_english(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    async with engine.connect() as conn:
        count = await conn.scalar(sa.text("SELECT count(*) FROM notification_template"))
    assert count == len(DEFAULT_TEMPLATES)
    context = variables(MESSAGES["HouseholdRegistered"])
    async with sessions() as session:
        arabic = await templates.render_message(
            session=session,
            event_type="HouseholdRegistered",
            language="ar",
            fallback_language="en",
            variables=context,
        )
        romanian = await templates.render_message(
            session=session,
            event_type="HouseholdRegistered",
            language="ro",
            fallback_language="en",
            variables=context,
        )
    assert arabic.language == "en" and arabic.body.startswith("Haven: your household")
    assert romanian.language == "ro" and "înregistrată" in romanian.body

"""Render limits of admin templates (issue 15, item 16): a template that loops a million
times, builds megabytes or takes too long is refused when saved (422) and, if one is stored
anyway, cut off when sent — the notification dies, the sender goes on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain import recipients, templates
from services.notifications.domain.errors import TemplateInvalid
from services.notifications.domain.messages import MESSAGES
from services.notifications.domain.sandbox import RenderError, RenderLimitExceeded
from services.notifications.jobs import Sender
from services.notifications.models import StaffRecipientCreate
from services.notifications.service import create_app
from services.notifications.settings import Channel, NotificationsSettings, StaffRole
from shared.auth import Role
from shared.consumer import EventConsumer
from shared.db import SessionFactory
from shared.events.catalog import CATALOG
from shared.events.envelope import EventPayload
from shared.settings import load_settings
from tests.notifications import support
from tests.notifications.support import RecordingTransport, rows
from tests.support.apps import serving
from tests.support.clock import FakeClock
from tests.support.events import envelope as wrap_event
from tests.support.tokens import auth_headers

ADMIN = auth_headers(Role.ADMIN, sub="user-admin")

ABUSE = {
    "a million iterations": "{% for i in range(1000000) %}x{% endfor %}",
    "nested loops": "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    "10 MB at once": "{{ 'x' * 10000000 }}",
    "10 MB in two steps": "{{ ('x' * 10000) * 1000 }}",
    "10 MB from a loop": "{% for i in range(999) %}{{ 'x' * 10000 }}{% endfor %}",
    "doubling by ~": "{% set a = 'x' * 50000 %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}",
    "doubling by +": "{% set a = 'x' * 50000 %}{% set a = a + a %}{% set a = a + a %}{{ a }}",
    "a huge join": "{{ range(100000)|join('x' * 1000) }}",
    "a huge replace": "{{ ('x' * 1000)|replace('x', 'y' * 1000) }}",
    "padding by method": "{{ 'x'.ljust(100000000) }}",
    "padding by format": "{{ '{:>99999999}'.format(1) }}",
    "padding by %": "{{ '%099999999d' % 1 }}",
    "a huge integer": "{% set n = 10 ** 32 %}{% set n = n * n %}{% set n = n * n %}"
    "{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}{{ n }}",
    "a recursive macro": "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}",
    "a slow loop": "{% for i in range(1000) %}{{ range(100000)|list|sort|length }}{% endfor %}",
}


@pytest.mark.parametrize("name", sorted(ABUSE))
def test_a_template_over_the_limits_is_cut_off_quickly(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError):
        templates.render(ABUSE[name], {})
    assert time.monotonic() - started < 2


def test_the_limits_say_which_was_passed() -> None:
    for name, words in (
        ("a million iterations", "above 100000"),
        ("nested loops", "loop iterations"),
        ("10 MB in two steps", "value longer"),
        ("10 MB from a loop", "characters"),
        ("a slow loop", "longer than 0.5 s"),
    ):
        with pytest.raises(RenderLimitExceeded) as info:
            templates.render(ABUSE[name], {})
        assert words in str(info.value), (name, str(info.value))


def test_ordinary_templates_are_not_limited() -> None:
    assert templates.render("{% for i in range(3) %}{{ i }}{% endfor %}", {}) == "012"
    assert templates.render("{{ ('ab' * 3) ~ '!' }}", {}) == "ababab!"
    assert templates.render("{{ items|join(', ') }}", {"items": ["a", "b"]}) == "a, b"
    assert templates.render("{{ 'a-b'|replace('-', ' ') }}", {}) == "a b"
    assert templates.render("{{ 7 % 3 }}", {}) == "1"


@pytest.mark.parametrize("name", sorted(ABUSE))
def test_a_template_over_the_limits_is_refused_when_saved(name: str) -> None:
    kind = MESSAGES["StockLow"]
    with pytest.raises(TemplateInvalid) as info:
        templates.check(kind, subject=None, body=ABUSE[name])
    assert info.value.extensions["errors"]


def test_variables_of_the_event_count_too_when_saved() -> None:
    kind = MESSAGES["DistributionRecorded"]
    loop = "{% for l in lines %}{% for i in range(l.quantity * 100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateInvalid):
        templates.check(kind, subject=None, body=loop)
    templates.check(kind, subject=None, body="{% for l in lines %}{{ l.sku }}{% endfor %}")


@pytest.fixture
async def api(
    database_url: str, infra: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("HAVEN_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_DATABASE_URL", database_url)
    for knob in ("RELAY_ENABLED", "CONSUMERS_ENABLED", "SENDER_ENABLED"):
        monkeypatch.setenv(f"HAVEN_NOTIFICATIONS_{knob}", "false")
    app = create_app(load_settings("notifications", NotificationsSettings), clock=clock)
    async with serving(app, base_url="http://notifications") as client:
        yield client


async def test_saving_a_template_over_the_limits_answers_422(api: httpx.AsyncClient) -> None:
    for name in ("a million iterations", "10 MB at once"):
        answer = await api.put(
            "/v1/templates/StockLow/en", json={"body": ABUSE[name]}, headers=ADMIN
        )
        assert answer.status_code == 422, name
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "render limits" in answer.json()["errors"][0]["message"]
    kept = (await api.get("/v1/templates/StockLow/en", headers=ADMIN)).json()
    assert "range(" not in kept["body"]


async def test_a_stored_template_over_the_limits_is_cut_off_at_send_time(
    consumer: EventConsumer,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: FakeClock,
    settings: NotificationsSettings,
    sender_for: Callable[..., Sender],
) -> None:
    for role, site in ((StaffRole.WAREHOUSE_MANAGER, "MDA-CHI"), (StaffRole.FIELD_SUPERVISOR, "*")):
        entry = StaffRecipientCreate(
            role=role, site_id=site, channel=Channel.EMAIL, address=f"{role}@example.org"
        )
        async with sessions() as session, session.begin():
            await recipients.add_staff(
                session=session, entry=entry, principal=support.admin(), now=clock()
            )
    async with engine.begin() as conn:  # stored around the checks, as an old version might be
        await conn.execute(
            sa.text("UPDATE notification_template SET body = :b WHERE event_type = 'StockLow'"),
            {"b": ABUSE["nested loops"] + ABUSE["10 MB from a loop"]},
        )
    await _deliver(consumer, support.stock_low("MDA-CHI"))
    await _deliver(consumer, support.duplicate_review(uuid4(), "MDA-PAL"))

    email = RecordingTransport()
    sender = sender_for(settings, {Channel.EMAIL: email})
    started = time.monotonic()
    assert await sender.run_once() == 1
    assert time.monotonic() - started < 5
    assert [m.event_type for m in email.sent] == ["DuplicateReviewRequested"]
    found = await rows(engine, "SELECT event_type, status, last_error FROM notification")
    states = {r.event_type: (r.status, r.last_error) for r in found}
    assert states["DuplicateReviewRequested"] == ("delivered", None)
    status, error = states["StockLow"]
    assert status == "dead" and error.startswith("template_error: more than 1000 loop")


async def _deliver(consumer: EventConsumer, payload: EventPayload) -> None:
    envelope = wrap_event(payload)
    key = str(getattr(payload, "household_id", None) or uuid4())
    assert (
        await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, key))
        == "applied"
    )

"""The HTTP API against the real PostgreSQL: roles, masking, site scope, cursors, retry,
templates (validated on save), the staff directory, and one audit record per change."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.service import create_app
from services.notifications.settings import NotificationsSettings
from shared.auth import Role
from shared.consumer import EventConsumer
from shared.events.catalog import CATALOG
from shared.events.envelope import EventPayload
from shared.settings import load_settings
from tests.notifications import support
from tests.notifications.support import rows
from tests.support.apps import serving
from tests.support.clock import FakeClock
from tests.support.events import envelope as wrap_event
from tests.support.tokens import auth_headers

ADMIN = auth_headers(Role.ADMIN, sub="user-admin")
MANAGER_PAL = auth_headers(Role.MANAGER, sites=("MDA-PAL",), sub="user-manager")
MANAGER_CHI = auth_headers(Role.MANAGER, sites=("MDA-CHI",), sub="user-manager")
FIELD = auth_headers(Role.FIELD_STAFF, sites=("MDA-PAL",), sub="user-field_staff")


@pytest.fixture
async def api(
    database_url: str, infra: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("HAVEN_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_DATABASE_URL", database_url)
    for knob in ("RELAY_ENABLED", "CONSUMERS_ENABLED", "SENDER_ENABLED"):
        monkeypatch.setenv(f"HAVEN_NOTIFICATIONS_{knob}", "false")
    settings = load_settings("notifications", NotificationsSettings)
    app = create_app(settings, clock=clock)
    async with serving(app, base_url="http://notifications") as client:
        yield client


async def deliver(consumer: EventConsumer, payload: EventPayload, key: UUID) -> None:
    envelope = wrap_event(payload)
    await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, str(key)))


async def audits(engine: AsyncEngine, action: str) -> list[dict[str, Any]]:
    found = await rows(
        engine,
        "SELECT value FROM outbox WHERE headers @> CAST(:h AS jsonb) ORDER BY id",
        h=json.dumps([["ce_type", "AuditEvent"]]),
    )
    return [v for v in (json.loads(r.value) for r in found) if v["action"] == action]


async def test_roles_guard_every_route(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/notifications")).status_code == 401
    assert (await api.get("/v1/notifications", headers=FIELD)).status_code == 403
    assert (await api.get("/v1/notifications", headers=MANAGER_PAL)).status_code == 200
    assert (
        await api.post(f"/v1/notifications/{uuid4()}/retry", headers=MANAGER_PAL)
    ).status_code == 403
    body = {"body": "{{ case_number }}"}
    put = await api.put("/v1/templates/HouseholdRegistered/en", json=body, headers=MANAGER_PAL)
    assert put.status_code == 403
    assert (await api.get("/v1/templates", headers=FIELD)).status_code == 403
    entry = {
        "role": "manager",
        "site_id": "MDA-PAL",
        "channel": "email",
        "address": "m@example.org",
    }
    assert (await api.post("/v1/staff-recipients", json=entry, headers=FIELD)).status_code == 403


async def test_listing_masks_recipients_filters_pages_and_scopes_by_site(
    api: httpx.AsyncClient, consumer: EventConsumer, engine: AsyncEngine
) -> None:
    household = uuid4()
    await deliver(consumer, support.contact(household), household)
    await deliver(consumer, support.registered(household), household)
    for _ in range(4):
        await deliver(consumer, support.distribution(household), household)
    refused = uuid4()
    await deliver(consumer, support.contact(refused, consent=False, site_id="MDA-CHI"), refused)
    await deliver(consumer, support.registered(refused, site_id="MDA-CHI"), refused)

    response = await api.get(f"/v1/notifications?household_id={household}", headers=ADMIN)
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 5
    assert {i["recipient"] for i in items} == {"+3736*****12"}
    assert "+37360123412" not in response.text
    assert "body" not in items[0] and "MDA-PAL-000123" not in response.text
    assert items[0]["event_type"] == "DistributionRecorded"  # newest first
    assert items[-1]["event_type"] == "HouseholdRegistered"
    assert {i["status"] for i in items} == {"queued"} and items[0]["channel"] == "sms"

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = f"/v1/notifications?household_id={household}&limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = (await api.get(query, headers=ADMIN)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in items]

    skipped = (await api.get("/v1/notifications?status=skipped", headers=ADMIN)).json()["items"]
    assert [(i["household_id"], i["skip_reason"]) for i in skipped] == [
        (str(refused), "no_consent")
    ]
    assert (await api.get("/v1/notifications?channel=email", headers=ADMIN)).json()["items"] == []

    # a manager sees only their sites; another site's notification is not found
    pal = (await api.get("/v1/notifications", headers=MANAGER_PAL)).json()["items"]
    assert {i["site_id"] for i in pal} == {"MDA-PAL"} and len(pal) == 5
    chi = (await api.get("/v1/notifications", headers=MANAGER_CHI)).json()["items"]
    assert [i["household_id"] for i in chi] == [str(refused)]
    other = await api.get(f"/v1/notifications/{items[0]['id']}", headers=MANAGER_CHI)
    assert other.status_code == 404
    mine = await api.get(f"/v1/notifications/{items[0]['id']}", headers=MANAGER_PAL)
    assert mine.status_code == 200 and mine.json()["recipient"] == "+3736*****12"

    bad = await api.get("/v1/notifications?cursor=not-a-cursor!", headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["type"] == "urn:haven:problem:invalid-cursor"
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/v1/notifications?limit=500", headers=ADMIN)).status_code == 422
    assert (await api.get("/v1/notifications?status=lost", headers=ADMIN)).status_code == 422
    assert len(await audits(engine, "notification.list")) == 8  # one per answered list
    assert len(await audits(engine, "notification.read")) == 1


async def test_admin_retry_requeues_dead_notifications_only(
    api: httpx.AsyncClient, consumer: EventConsumer, engine: AsyncEngine, clock: FakeClock
) -> None:
    household = uuid4()
    await deliver(consumer, support.contact(household), household)
    await deliver(consumer, support.registered(household), household)
    (row,) = await rows(engine, "SELECT id FROM notification WHERE household_id = :h", h=household)
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text(
                "UPDATE notification SET status = 'dead', attempts = 3, last_error = 'http_502' "
                "WHERE id = :i"
            ),
            {"i": row.id},
        )
    dead = (await api.get("/v1/notifications?status=dead", headers=ADMIN)).json()["items"]
    assert [(d["id"], d["attempts"], d["last_error"]) for d in dead] == [
        (str(row.id), 3, "http_502")
    ]

    clock.advance(minutes=5)
    response = await api.post(f"/v1/notifications/{row.id}/retry", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempts"]) == ("queued", 0)
    assert body["next_attempt_at"].startswith(clock.now.isoformat()[:19])
    (audit,) = await audits(engine, "notification.retry")
    assert (audit["resource_type"], audit["resource_id"], audit["actor_sub"]) == (
        "notification",
        str(row.id),
        "user-admin",
    )

    again = await api.post(f"/v1/notifications/{row.id}/retry", headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["retryable_statuses"] == ["dead", "failed", "skipped"]
    assert (await api.post(f"/v1/notifications/{uuid4()}/retry", headers=ADMIN)).status_code == 404
    assert len(await audits(engine, "notification.retry")) == 1  # refused retries change nothing


async def test_templates_are_listed_read_and_replaced_after_validation(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = (await api.get("/v1/templates", headers=MANAGER_PAL)).json()
    assert len(first["items"]) == 36 and first["next_cursor"] is None
    assert {t["language"] for t in first["items"]} == {"en", "uk", "ru", "ro"}
    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:  # a page at a time (issue 15, item 16)
        query = "/v1/templates?limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(query, headers=MANAGER_PAL)).json()
        assert len(page["items"]) <= 10
        listed += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == first["items"]
    assert (await api.get("/v1/templates?cursor=bad", headers=ADMIN)).status_code == 400

    uk = (await api.get("/v1/templates/HouseholdRegistered/uk", headers=ADMIN)).json()
    assert "Номер справи" in uk["body"] and uk["audience"] == "beneficiary"
    assert "case_number" in uk["variables"] and "members" not in uk["variables"]
    assert (await api.get("/v1/templates/HouseholdRegistered/ar", headers=ADMIN)).status_code == 404
    assert (await api.get("/v1/templates/HouseholdUpdated/en", headers=ADMIN)).status_code == 404

    new_body = "Haven: dosarul dumneavoastră este {{ case_number }}. Mulțumim!"
    put = await api.put(
        "/v1/templates/HouseholdRegistered/ro", json={"body": new_body}, headers=ADMIN
    )
    assert put.status_code == 200
    assert put.json()["body"] == new_body and put.json()["updated_by"] == "user-admin"
    created = await api.put(
        "/v1/templates/HouseholdRegistered/ar",
        json={"body": "Haven: رقم الحالة {{ case_number }}"},
        headers=ADMIN,
    )
    assert created.status_code == 201
    assert [a["action"] for a in await audits(engine, "template.update")] == ["template.update"]
    assert len(await audits(engine, "template.create")) == 1

    syntax = await api.put(
        "/v1/templates/StockLow/en", json={"subject": "{{ sku", "body": "x"}, headers=ADMIN
    )
    assert syntax.status_code == 422
    assert syntax.json()["errors"][0]["field"] == "subject"
    unknown = await api.put(
        "/v1/templates/StockLow/en", json={"body": "Call {{ phone }}"}, headers=ADMIN
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {"field": "body", "message": "unknown variable 'phone'", "variable": "phone"}
    ]
    for bad in (
        {"body": "x", "extra": 1},
        {"body": "bell \x07 character"},
        {"body": ""},
        {"body": "x" * 2001},
    ):
        assert (
            await api.put("/v1/templates/StockLow/en", json=bad, headers=ADMIN)
        ).status_code == 422
    assert (
        await api.put("/v1/templates/StockLow/EN", json={"body": "x"}, headers=ADMIN)
    ).status_code == 422
    assert (
        await api.put("/v1/templates/Nope/en", json={"body": "x"}, headers=ADMIN)
    ).status_code == 404
    # nothing of the refused saves was written
    stock = (await api.get("/v1/templates/StockLow/en", headers=ADMIN)).json()
    assert stock["subject"] == "Stock low at {{ site_id }}: {{ sku }}"
    assert len(await audits(engine, "template.update")) == 1


async def test_staff_directory_entries_are_validated_and_unique(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    entry = {
        "role": "warehouse_manager",
        "site_id": "MDA-CHI",
        "channel": "email",
        "address": "depozit.chisinau@example.org",
        "language": "ro",
    }
    created = await api.post("/v1/staff-recipients", json=entry, headers=ADMIN)
    assert created.status_code == 201
    assert (await api.post("/v1/staff-recipients", json=entry, headers=ADMIN)).status_code == 409
    for bad in (
        entry | {"address": "not-an-address"},
        entry | {"channel": "webhook", "address": "ftp://example.org/x"},
        entry | {"channel": "webhook", "address": "https://user:pw@example.org/x"},
        entry | {"channel": "sms", "address": "+37360000000"},
        entry | {"role": "provider_contact"},
        entry | {"site_id": "mda chi"},
        entry | {"language": "romanian"},
    ):
        assert (
            await api.post("/v1/staff-recipients", json=bad, headers=ADMIN)
        ).status_code == 422, bad
    hook = entry | {"channel": "webhook", "address": "https://hooks.example.org/haven"}
    assert (await api.post("/v1/staff-recipients", json=hook, headers=ADMIN)).status_code == 201
    listed = (await api.get("/v1/staff-recipients?site_id=MDA-CHI", headers=MANAGER_CHI)).json()
    assert len(listed["items"]) == 2
    identifier = created.json()["id"]
    assert (
        await api.delete(f"/v1/staff-recipients/{identifier}", headers=ADMIN)
    ).status_code == 204
    assert (
        await api.delete(f"/v1/staff-recipients/{identifier}", headers=ADMIN)
    ).status_code == 404
    assert len(await audits(engine, "staff_recipient.create")) == 2
    assert len(await audits(engine, "staff_recipient.delete")) == 1


async def test_the_demo_data_loads_and_loads_again_harmlessly(api: httpx.AsyncClient) -> None:
    from haven.demo import demo_requests

    requests = demo_requests("notifications")
    assert requests
    for expected in (201, 409):
        for request in requests:
            response = await api.request(
                request["method"], request["path"], json=request["body"], headers=ADMIN
            )
            assert response.status_code == expected, (request, response.text)
    listed = (await api.get("/v1/staff-recipients?limit=200", headers=ADMIN)).json()
    assert len(listed["items"]) == len(requests)

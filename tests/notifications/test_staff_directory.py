"""The staff directory (issue 15, item 9): managers see and change the entries of their sites
only, addresses are masked in every answer (webhook paths and queries hold secrets), the
list is paged, and reads — allowed or refused — are audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain import recipients
from services.notifications.domain.masking import mask_listed
from services.notifications.service import create_app
from services.notifications.settings import Channel, NotificationsSettings, StaffRole
from shared.auth import Role
from shared.db import SessionFactory
from shared.settings import load_settings
from tests.notifications.support import rows
from tests.support.apps import serving
from tests.support.clock import FakeClock
from tests.support.tokens import auth_headers

ADMIN = auth_headers(Role.ADMIN, sub="user-admin")
MANAGER_PAL = auth_headers(Role.MANAGER, sites=("MDA-PAL",), sub="manager-pal")
EVERYWHERE = auth_headers(Role.MANAGER, sites=("*",), sub="manager-hq")

SECRET_HOOK = "https://hooks.example.org/services/T0/B0/s3cr3t-path?token=s3cr3t-query"
ENTRIES: dict[str, dict[str, Any]] = {
    "pal": {
        "role": "caseworker",
        "site_id": "MDA-PAL",
        "channel": "email",
        "address": "ana.popescu@example.org",
        "staff_sub": "ana",
    },
    "chi": {"role": "manager", "site_id": "MDA-CHI", "channel": "webhook", "address": SECRET_HOOK},
    "all": {
        "role": "manager",
        "site_id": "*",
        "channel": "email",
        "address": "programme.manager@example.org",
    },
    "provider": {
        "role": "provider_contact",
        "site_id": "*",
        "channel": "email",
        "address": "clinic@example.org",
        "provider_id": str(uuid4()),
    },
}


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


@pytest.fixture
async def directory(api: httpx.AsyncClient) -> dict[str, str]:
    """The entries' ids, by name, added by an admin."""
    ids: dict[str, str] = {}
    for name, entry in ENTRIES.items():
        created = await api.post("/v1/staff-recipients", json=entry, headers=ADMIN)
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    return ids


async def audit_records(engine: AsyncEngine) -> list[dict[str, Any]]:
    found = await rows(
        engine,
        "SELECT value FROM outbox WHERE headers @> CAST(:h AS jsonb) ORDER BY id",
        h=json.dumps([["ce_type", "AuditEvent"]]),
    )
    return [json.loads(r.value) for r in found]


def test_addresses_are_masked_to_recognise_not_to_contact() -> None:
    assert mask_listed(Channel.EMAIL, "ana.popescu@example.org") == "a***@example.org"
    assert mask_listed(Channel.WEBHOOK, SECRET_HOOK) == "https://hooks.example.org/…"
    assert mask_listed(Channel.SMS, "+37360123412") == "**********12"


async def test_every_answer_masks_the_address(
    api: httpx.AsyncClient, directory: dict[str, str]
) -> None:
    answers = [
        await api.get("/v1/staff-recipients", headers=ADMIN),
        await api.get(f"/v1/staff-recipients/{directory['chi']}", headers=ADMIN),
        await api.post(
            "/v1/staff-recipients", json=ENTRIES["chi"] | {"site_id": "MDA-OCN"}, headers=ADMIN
        ),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201)
        for secret in ("s3cr3t", "/services/", "ana.popescu", "programme.manager", "clinic@"):
            assert secret not in answer.text, (secret, answer.request.url)
    listed = {i["id"]: i["address"] for i in answers[0].json()["items"]}
    assert listed[directory["pal"]] == "a***@example.org"
    assert listed[directory["chi"]] == "https://hooks.example.org/…"


async def test_a_manager_sees_only_the_entries_of_their_sites(
    api: httpx.AsyncClient, directory: dict[str, str], engine: AsyncEngine
) -> None:
    mine = (await api.get("/v1/staff-recipients", headers=MANAGER_PAL)).json()
    assert [i["id"] for i in mine["items"]] == [directory["pal"]]
    everything = (await api.get("/v1/staff-recipients", headers=EVERYWHERE)).json()
    assert len(everything["items"]) == len(ENTRIES)

    own = await api.get(f"/v1/staff-recipients/{directory['pal']}", headers=MANAGER_PAL)
    assert own.status_code == 200 and own.json()["address"] == "a***@example.org"
    refused = await api.get(f"/v1/staff-recipients/{directory['chi']}", headers=MANAGER_PAL)
    missing = await api.get(f"/v1/staff-recipients/{uuid4()}", headers=MANAGER_PAL)
    assert refused.status_code == missing.status_code == 404
    assert {k: v for k, v in refused.json().items() if k not in ("detail", "instance")} == {
        k: v for k, v in missing.json().items() if k not in ("detail", "instance")
    }
    assert (
        await api.get(f"/v1/staff-recipients/{directory['all']}", headers=MANAGER_PAL)
    ).status_code == 404

    records = await audit_records(engine)
    actions = [r["action"] for r in records]
    assert actions.count("staff_recipient.list") == 2
    assert actions.count("staff_recipient.read") == 1
    refusals = [r for r in records if r["action"] == "GET /v1/staff-recipients/{recipient_id}"]
    assert len(refusals) == 2  # the other site's entry and the "*" one; not the unknown id


async def test_a_manager_changes_only_the_entries_of_their_sites(
    api: httpx.AsyncClient, directory: dict[str, str], sessions: SessionFactory
) -> None:
    ours = ENTRIES["pal"] | {"address": "ion@example.org", "staff_sub": None}
    added = await api.post("/v1/staff-recipients", json=ours, headers=MANAGER_PAL)
    assert added.status_code == 201 and added.json()["address"] == "i***@example.org"
    for theirs, status in (
        (ours | {"site_id": "MDA-CHI"}, 404),
        (ours | {"site_id": "*"}, 404),
        (ENTRIES["provider"] | {"site_id": "MDA-PAL"}, 403),
    ):
        refused = await api.post("/v1/staff-recipients", json=theirs, headers=MANAGER_PAL)
        assert refused.status_code == status, refused.text
    for other in ("chi", "all", "provider"):
        gone = await api.delete(f"/v1/staff-recipients/{directory[other]}", headers=MANAGER_PAL)
        assert gone.status_code == 404
    assert (
        await api.delete(f"/v1/staff-recipients/{directory['pal']}", headers=MANAGER_PAL)
    ).status_code == 204
    left = (await api.get("/v1/staff-recipients", headers=ADMIN)).json()["items"]
    assert {i["id"] for i in left} == {directory[n] for n in ("chi", "all", "provider")} | {
        added.json()["id"]
    }


async def test_the_directory_is_paged_with_cursors(
    api: httpx.AsyncClient, directory: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "/v1/staff-recipients?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(query, headers=ADMIN)).json()
        assert len(page["items"]) <= 3
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(directory.values())  # oldest first, each once
    assert (await api.get("/v1/staff-recipients?cursor=nope", headers=ADMIN)).status_code == 400
    assert (await api.get("/v1/staff-recipients?limit=201", headers=ADMIN)).status_code == 422


async def test_an_entry_of_another_site_naming_a_person_does_not_draw_their_alerts(
    api: httpx.AsyncClient, directory: dict[str, str], sessions: SessionFactory
) -> None:
    decoy = ENTRIES["pal"] | {"site_id": "MDA-CHI", "address": "decoy@example.org"}
    assert (await api.post("/v1/staff-recipients", json=decoy, headers=ADMIN)).status_code == 201
    async with sessions() as session:
        targets = await recipients.staff_for(
            session=session, role=StaffRole.CASEWORKER, site_id="MDA-PAL", staff_sub="ana"
        )
    assert [t.address for t in targets] == ["ana.popescu@example.org"]

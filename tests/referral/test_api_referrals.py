"""Referrals over HTTP: the consent gate and its override, every legal and illegal transition,
rerouting along a recorded path, the managers' queue, roles and the provider's restricted view.
Events are checked as staged in the outbox (the relay is off here; test_kafka_flow.py reads
them on the topic)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.referral.domain.common import SYSTEM_ACTOR
from shared.auth import Role
from shared.vocabulary import NeedType, Priority, Vulnerability
from tests.referral.factories import (
    ADMIN,
    CASEWORKER,
    FOCAL_POINT,
    MANAGER,
    OTHER_SITE,
    RunningApp,
    act,
    area,
    audit_records,
    auth,
    known_household,
    new_provider,
    provider_auth,
    refer,
    referral_events,
    running_app,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def app(infra) -> AsyncIterator[RunningApp]:
    async with running_app(infra) as running:
        yield running


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


# --- creating: household known, consent, duplicates ----------------------------------------


async def test_unknown_household_is_404_saying_registration_may_be_on_its_way(
    app: RunningApp,
) -> None:
    response = await refer(app, uuid.uuid4())
    assert response.status_code == 404
    problem = response.json()
    assert problem["type"] == "urn:haven:problem:household-not-found"
    assert "try again" in problem["detail"]


async def test_household_of_another_site_is_404_too(app: RunningApp) -> None:
    household = await known_household(app, site_id=OTHER_SITE, needs=[NeedType.FOOD])
    response = await refer(app, household)
    assert response.status_code == 404
    other_caseworker = auth(Role.CASEWORKER, sites=[OTHER_SITE])
    assert (await refer(app, household, headers=other_caseworker)).status_code == 201


async def test_consent_gate_then_override_with_reason_leaves_an_audit_record(
    app: RunningApp,
) -> None:
    admin1, admin2 = area()
    await new_provider(app, services=["legal"], regions=[admin1])
    household = await known_household(
        app,
        needs=[NeedType.LEGAL_AID],
        referral_sharing=False,
        admin1=admin1,
        admin2=admin2,
    )
    # Without consent the automatic rules asked for consent instead of referring.
    tasks = (
        await app.client.get(
            "/v1/consent-tasks", params={"household_id": str(household)}, headers=CASEWORKER
        )
    ).json()["items"]
    assert [(t["service_type"], t["status"]) for t in tasks] == [("legal", "open")]
    assert types(await referral_events(app.engine, household)) == ["ConsentFollowUpRequested"]

    refused = await refer(app, household, "legal")
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:haven:problem:consent-required"
    no_reason = await refer(app, household, "legal", consent_override=True)
    assert no_reason.status_code == 422
    assert types(await referral_events(app.engine, household)) == ["ConsentFollowUpRequested"]

    justification = "Court hearing tomorrow; verbal consent, form to follow"
    created = await refer(
        app, household, "legal", consent_override=True, override_reason=justification
    )
    assert created.status_code == 201, created.text
    referral = created.json()
    assert referral["consent_override"] is True
    assert referral["status"] == "sent"
    audit = await audit_records(app.engine, referral["id"])
    # The justification is free text: it stays on the referral, never in the permanent trail.
    assert [(a["action"], a["reason"]) for a in audit] == [
        ("referral.create_with_consent_override", "consent_override")
    ]
    async with app.engine.connect() as conn:
        kept = await conn.scalar(
            sa.text("SELECT override_reason FROM referral WHERE id = :id"), {"id": referral["id"]}
        )
    assert kept == justification
    events = await referral_events(app.engine, household)
    assert types(events) == ["ConsentFollowUpRequested", "ReferralCreated", "ReferralSent"]
    assert events[1].data["consent_override"] is True
    tasks = (
        await app.client.get(
            "/v1/consent-tasks",
            params={"household_id": str(household), "status": "resolved"},
            headers=CASEWORKER,
        )
    ).json()["items"]
    assert [(t["status"], t["closed_reason"]) for t in tasks] == [("resolved", "consent_override")]


async def test_never_two_open_referrals_for_one_service_type(app: RunningApp) -> None:
    household = await known_household(app, needs=[NeedType.FOOD])
    first = await refer(app, household, "employment")
    assert first.status_code == 201
    second = await refer(app, household, "employment")
    assert second.status_code == 409
    assert second.json()["type"] == "urn:haven:problem:duplicate-referral"
    assert second.json()["referral_id"] == first.json()["id"]
    assert (await refer(app, household, "legal")).status_code == 201  # another type is fine
    cancelled = await act(app, first.json()["id"], "cancel", CASEWORKER)
    assert cancelled.status_code == 200
    assert (await refer(app, household, "employment")).status_code == 201


async def test_deactivated_household_cannot_be_referred(app: RunningApp) -> None:
    from services.referral.domain.households import deactivate
    from shared.events.registration import HouseholdDeactivated

    household = await known_household(app)
    async with app.sessions() as session, session.begin():
        await deactivate(
            session=session,
            event=HouseholdDeactivated(
                household_id=household, site_id="MDA-CHI", reason_code="left", version=2
            ),
            actor=SYSTEM_ACTOR,
            at=app.clock(),
        )
    response = await refer(app, household)
    assert response.status_code == 409
    assert response.json()["type"] == "urn:haven:problem:household-inactive"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"service_type": "dentistry"}, 422),
        ({"urgency": "whenever"}, 422),
        ({"reason": "line one\nline two"}, 422),
        ({"reason": ""}, 422),
        ({"unknown": True}, 422),
        ({"override_reason": "without an override"}, 422),
        ({"household_id": "not-a-uuid"}, 422),
    ],
)
async def test_bad_referral_requests(app: RunningApp, change: dict[str, Any], status: int) -> None:
    body = {
        "household_id": str(uuid.uuid4()),
        "service_type": "medical",
        "reason": "fine",
    } | change
    response = await app.client.post("/v1/referrals", json=body, headers=CASEWORKER)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_malformed_and_oversized_bodies(app: RunningApp) -> None:
    broken = await app.client.post(
        "/v1/referrals",
        content=b'{"household_id": ',
        headers=CASEWORKER | {"content-type": "application/json"},
    )
    assert broken.status_code == 400
    huge = await app.client.post(
        "/v1/referrals",
        content=b'{"reason": "' + b"x" * 1_100_000 + b'"}',
        headers=CASEWORKER | {"content-type": "application/json"},
    )
    assert huge.status_code == 413


# --- the happy path and every legal transition ---------------------------------------------


async def test_sent_accepted_started_completed_with_events_and_history(app: RunningApp) -> None:
    admin1, admin2 = area()
    provider = await new_provider(app, regions=[admin1])
    household = await known_household(app, admin1=admin1, admin2=admin2)
    created = await refer(app, household, urgency="urgent")
    assert created.status_code == 201, created.text
    referral = created.json()
    assert referral["provider_id"] == provider
    assert referral["status"] == "sent"
    due = datetime.fromisoformat(referral["due_at"])
    assert due - app.clock() == timedelta(hours=24)

    staff = provider_auth(provider)
    for action, status in (
        ("accept", "accepted"),
        ("start", "in_progress"),
        ("complete", "completed"),
    ):
        response = await act(app, referral["id"], action, staff)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status

    detail = (await app.client.get(f"/v1/referrals/{referral['id']}", headers=CASEWORKER)).json()
    assert [h["action"] for h in detail["history"]] == [
        "create",
        "send",
        "accept",
        "start",
        "complete",
    ]
    assert detail["allowed_actions"] == []
    events = await referral_events(app.engine, household)
    assert types(events) == [
        "ReferralCreated",
        "ReferralSent",
        "ReferralAccepted",
        "ReferralStarted",
        "ReferralCompleted",
    ]
    sent = events[1]
    assert sent.data["provider_id"] == provider
    assert sent.data["provider_name"].startswith("Clinic")
    assert sent.data["provider_address"] == "Strada Ismail 12, Chișinău, MD-2001, MD"
    assert sent.data["provider_opening_hours"] == "Mon-Fri 09:00-17:00"
    assert sent.data["provider_phone"] == "+373 22 123 456"
    assert all(e.key == str(household) for e in events)
    assert {a["action"] for a in await audit_records(app.engine, referral["id"])} >= {
        "referral.create",
        "referral.accept",
        "referral.start",
        "referral.complete",
        "referral.read",
    }


async def test_decline_reroutes_along_a_recorded_path_then_queues_for_managers(
    app: RunningApp,
) -> None:
    admin1, admin2 = area()
    district = await new_provider(app, regions=[admin2], languages=["ro"])
    province = await new_provider(app, regions=[admin1], languages=["uk"])
    household = await known_household(app, admin1=admin1, admin2=admin2)
    referral = (await refer(app, household)).json()
    assert referral["provider_id"] == district  # admin2 before admin1

    declined = await act(
        app, referral["id"], "decline", provider_auth(district), {"reason_code": "language"}
    )
    assert declined.status_code == 200, declined.text
    assert declined.json() == {
        "id": referral["id"],
        "status": "declined",
        "reason_code": "language",
    }
    # it left the decliner, who can no longer see it
    gone = await app.client.get(f"/v1/referrals/{referral['id']}", headers=provider_auth(district))
    assert gone.status_code == 404
    now_at = await app.client.get(
        f"/v1/referrals/{referral['id']}", headers=provider_auth(province)
    )
    assert now_at.status_code == 200 and now_at.json()["status"] == "sent"

    queued = await act(
        app,
        referral["id"],
        "decline",
        provider_auth(province),
        {"reason_code": "no_capacity", "note": "Full until next month"},
    )
    assert queued.status_code == 200
    detail = (await app.client.get(f"/v1/referrals/{referral['id']}", headers=MANAGER)).json()
    assert detail["status"] == "unassigned"
    assert detail["provider_id"] is None
    path = [(h["action"], h["provider_id"], h["reason_code"]) for h in detail["history"]]
    assert path == [
        ("create", None, None),
        ("send", district, None),
        ("decline", district, "language"),
        ("reroute", province, "declined"),
        ("decline", province, "no_capacity"),
        ("queue", None, "declined"),
    ]
    assert detail["history"][4]["note"] == "Full until next month"
    events = await referral_events(app.engine, household)
    assert types(events) == [
        "ReferralCreated",
        "ReferralSent",
        "ReferralDeclined",
        "ReferralRerouted",
        "ReferralSent",
        "ReferralDeclined",
        "ReferralRerouted",
        "ReferralEscalated",
    ]
    assert events[3].data["previous_provider_id"] == district
    assert events[3].data["provider_id"] == province
    assert events[6].data["provider_id"] is None and events[6].data["status"] == "unassigned"
    assert events[7].data["tier"] == 3 and events[7].data["reason_code"] == "no_provider"

    queue = (
        await app.client.get(
            "/v1/referrals", params={"status": "unassigned", "limit": 200}, headers=MANAGER
        )
    ).json()
    assert referral["id"] in [r["id"] for r in queue["items"]]

    assert (
        await act(app, referral["id"], "assign", CASEWORKER, {"provider_id": district})
    ).status_code == 403
    unknown = await act(app, referral["id"], "assign", MANAGER, {"provider_id": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assigned = await act(app, referral["id"], "assign", MANAGER, {"provider_id": district})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "sent"
    assert assigned.json()["provider_id"] == district
    assert types(await referral_events(app.engine, household))[-1] == "ReferralSent"


async def test_no_provider_at_all_goes_straight_to_the_queue(app: RunningApp) -> None:
    admin1, admin2 = area()
    await new_provider(app, regions=[admin1], capacity=0)  # no free slot
    household = await known_household(app, admin1=admin1, admin2=admin2)
    referral = (await refer(app, household)).json()
    assert referral["status"] == "unassigned"
    assert types(await referral_events(app.engine, household)) == [
        "ReferralCreated",
        "ReferralEscalated",
    ]


async def sent_referral(app: RunningApp) -> tuple[str, str, uuid.UUID]:
    admin1, admin2 = area()
    provider = await new_provider(app, regions=[admin1])
    household = await known_household(app, admin1=admin1, admin2=admin2)
    response = await refer(app, household)
    assert response.status_code == 201
    return response.json()["id"], provider, household


async def to_status(app: RunningApp, status: str) -> tuple[str, str]:
    """A referral brought to ``status`` through the API."""
    if status == "unassigned":
        admin1, admin2 = area()
        household = await known_household(app, admin1=admin1, admin2=admin2)
        referral = (await refer(app, household)).json()
        assert referral["status"] == "unassigned"
        return referral["id"], ""
    referral_id, provider, _ = await sent_referral(app)
    staff = provider_auth(provider)
    steps = {"sent": [], "accepted": ["accept"], "in_progress": ["accept", "start"]}[status]
    for step in steps:
        assert (await act(app, referral_id, step, staff)).status_code == 200
    return referral_id, provider


@pytest.mark.parametrize("status", ["sent", "accepted", "in_progress", "unassigned"])
@pytest.mark.parametrize(
    ("action", "headers", "final"),
    [("cancel", CASEWORKER, "cancelled"), ("revoke", MANAGER, "revoked")],
)
async def test_cancel_and_revoke_from_every_open_status(
    app: RunningApp, status: str, action: str, headers: dict[str, str], final: str
) -> None:
    referral_id, provider = await to_status(app, status)
    body = {"reason_code": "safeguarding"} if action == "revoke" else None
    response = await act(app, referral_id, action, headers, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == final
    assert response.json()["history"][-1]["action"] == action
    if provider:  # the provider still sees it, closed
        seen = await app.client.get(f"/v1/referrals/{referral_id}", headers=provider_auth(provider))
        assert seen.json()["status"] == final


# --- every illegal transition through the API ----------------------------------------------


async def test_illegal_transitions_are_409_naming_the_allowed_actions(app: RunningApp) -> None:
    referral_id, provider, _ = await sent_referral(app)
    staff = provider_auth(provider)

    async def refused(action: str, headers: dict[str, str], allowed: list[str], body: Any = None):  # type: ignore[no-untyped-def]
        response = await act(app, referral_id, action, headers, body)
        assert response.status_code == 409, (action, response.text)
        problem = response.json()
        assert problem["type"] == "urn:haven:problem:illegal-transition"
        assert problem["allowed"] == allowed
        assert problem["action"] == action

    await refused("start", staff, ["accept", "decline", "cancel", "revoke"])
    await refused("complete", staff, ["accept", "decline", "cancel", "revoke"])
    await refused(
        "assign", MANAGER, ["accept", "decline", "cancel", "revoke"], {"provider_id": provider}
    )
    assert (await act(app, referral_id, "accept", staff)).status_code == 200
    await refused("accept", staff, ["start", "cancel", "revoke"])
    await refused("complete", staff, ["start", "cancel", "revoke"])
    await refused("decline", staff, ["start", "cancel", "revoke"], {"reason_code": "other"})
    assert (await act(app, referral_id, "start", staff)).status_code == 200
    await refused("decline", staff, ["complete", "cancel", "revoke"], {"reason_code": "other"})
    await refused("start", staff, ["complete", "cancel", "revoke"])
    assert (await act(app, referral_id, "complete", staff)).status_code == 200
    await refused("cancel", CASEWORKER, [])
    await refused("revoke", MANAGER, [], {"reason_code": "other"})
    await refused("accept", staff, [])

    cancelled_id, other_provider = await to_status(app, "sent")
    assert (await act(app, cancelled_id, "cancel", CASEWORKER)).status_code == 200
    response = await act(app, cancelled_id, "accept", provider_auth(other_provider))
    assert response.status_code == 409 and response.json()["allowed"] == []
    response = await act(app, cancelled_id, "revoke", MANAGER, {"reason_code": "other"})
    assert response.status_code == 409


async def test_who_may_do_what(app: RunningApp) -> None:
    referral_id, provider, _ = await sent_referral(app)
    other_org = provider_auth(uuid.uuid4())
    assert (await act(app, referral_id, "accept", CASEWORKER)).status_code == 403
    assert (await act(app, referral_id, "accept", MANAGER)).status_code == 403
    assert (await act(app, referral_id, "cancel", provider_auth(provider))).status_code == 403
    assert (
        await act(app, referral_id, "revoke", CASEWORKER, {"reason_code": "other"})
    ).status_code == 403
    assert (await act(app, referral_id, "accept", other_org)).status_code == 404
    assert (
        await app.client.get(f"/v1/referrals/{referral_id}", headers=other_org)
    ).status_code == 404
    bad_org = auth(Role.PROVIDER, sites=(), org="not-a-uuid")
    assert (await act(app, referral_id, "accept", bad_org)).status_code == 404
    other_site = auth(Role.CASEWORKER, sites=[OTHER_SITE])
    assert (await act(app, referral_id, "cancel", other_site)).status_code == 404
    hidden = await app.client.get(f"/v1/referrals/{referral_id}", headers=other_site)
    missing = await app.client.get(f"/v1/referrals/{uuid.uuid4()}", headers=other_site)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["type"] == missing.json()["type"]
    assert hidden.json()["type"] == "urn:haven:problem:referral-not-found"
    assert hidden.json()["detail"] == f"Referral {referral_id} was not found."
    refusals = [
        a
        for a in await audit_records(app.engine)
        if a["resource_type"] == "request" and a["outcome"] == "not_found"
    ]
    assert {a["action"] for a in refusals} >= {
        "GET /v1/referrals/{referral_id}",
        "POST /v1/referrals/{referral_id}/cancel",
        "POST /v1/referrals/{referral_id}/accept",
    }
    assert (await app.client.post("/v1/referrals", json={})).status_code == 401
    assert (await refer(app, uuid.uuid4(), headers=provider_auth(provider))).status_code == 403
    assert (await refer(app, uuid.uuid4(), headers=ADMIN)).status_code == 403
    # nothing happened to it
    staff_view = (await app.client.get(f"/v1/referrals/{referral_id}", headers=CASEWORKER)).json()
    assert staff_view["status"] == "sent"


# --- the provider's restricted view --------------------------------------------------------

PROVIDER_VIEW_KEYS = {
    "id",
    "household_ref",
    "service_type",
    "urgency",
    "status",
    "provider_id",
    "due_at",
    "sent_at",
    "household",
    "allowed_actions",
    "history",
}


async def test_providers_see_only_their_referrals_and_only_what_they_need(
    app: RunningApp,
) -> None:
    admin1, admin2 = area()
    clinic = await new_provider(app, regions=[admin1], services=["medical"])
    shelter = await new_provider(app, regions=[admin1], services=["counter_trafficking"])
    household = await known_household(
        app,
        admin1=admin1,
        admin2=admin2,
        needs=[(NeedType.MEDICAL_CARE, Priority.URGENT), NeedType.FOOD],
        vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING],
    )
    mine = (await app.client.get("/v1/referrals", headers=provider_auth(clinic))).json()["items"]
    assert len(mine) == 1
    view = mine[0]
    assert set(view) == PROVIDER_VIEW_KEYS
    assert view["service_type"] == "medical"
    assert view["urgency"] == "urgent"
    assert view["household"] == {
        "admin1": admin1,
        "admin2": admin2,
        "preferred_language": "uk",
        "household_size": 3,
    }
    assert view["allowed_actions"] == ["accept", "decline"]
    assert [h["action"] for h in view["history"]] == ["send"]
    assert set(view["history"][0]) == {"at", "action", "to_status"}
    text = str(view)
    for secret in ("counter_trafficking", "trafficking", "food", "reason", "sensitive"):
        assert secret not in text
    assert str(household) not in text and household.hex not in text

    staff = (
        await app.client.get(
            "/v1/referrals", params={"household_id": str(household)}, headers=FOCAL_POINT
        )
    ).json()["items"]
    by_type = {r["service_type"]: r for r in staff}
    assert set(by_type) == {"medical", "counter_trafficking"}
    assert by_type["counter_trafficking"]["sensitive"] is True
    hidden = by_type["counter_trafficking"]["id"]
    assert (
        await app.client.get(f"/v1/referrals/{hidden}", headers=provider_auth(clinic))
    ).status_code == 404
    theirs = await app.client.get(f"/v1/referrals/{hidden}", headers=provider_auth(shelter))
    assert theirs.status_code == 200 and set(theirs.json()) == PROVIDER_VIEW_KEYS


# --- reading: filters, pages, sites, audit -------------------------------------------------


async def test_list_filters_overdue_pagination_and_site_scope(app: RunningApp) -> None:
    admin1, admin2 = area()
    provider = await new_provider(app, regions=[admin1], services=["medical", "legal"])
    ids = []
    for _ in range(3):
        household = await known_household(app, admin1=admin1, admin2=admin2)
        ids.append((await refer(app, household)).json()["id"])
    legal_household = await known_household(app, admin1=admin1, admin2=admin2)
    legal = (await refer(app, legal_household, "legal")).json()["id"]

    async def listed(headers: dict[str, str] = CASEWORKER, **params: Any) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            query = {"provider_id": provider, "limit": 2, **params}
            if cursor:
                query["cursor"] = cursor
            response = await app.client.get("/v1/referrals", params=query, headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            found += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return found

    assert await listed() == [*ids, legal]  # oldest first, across pages
    assert await listed(service_type="legal") == [legal]
    assert await listed(household_id=str(legal_household)) == [legal]
    assert await listed(status="accepted") == []
    assert await listed(overdue="true") == []
    assert await listed(headers=auth(Role.CASEWORKER, sites=[OTHER_SITE])) == []
    assert await listed(headers=auth(Role.MANAGER, sites=["*"])) == [*ids, legal]

    app.clock.advance(hours=73)
    try:
        assert await listed(overdue="true") == [*ids, legal]
        assert (await act(app, ids[0], "accept", provider_auth(provider))).status_code == 200
        assert await listed(overdue="true") == [*ids[1:], legal]
        assert await listed(overdue="false") == [ids[0]]
        overdue_view = (await app.client.get(f"/v1/referrals/{ids[1]}", headers=CASEWORKER)).json()
        assert overdue_view["overdue"] is True
    finally:
        app.clock.advance(hours=-73)

    audit = await audit_records(app.engine)
    assert any(a["action"] == "referral.list" for a in audit)
    assert (
        await app.client.get("/v1/referrals", params={"cursor": "garbage!"}, headers=CASEWORKER)
    ).status_code == 400
    assert (
        await app.client.get("/v1/referrals", params={"status": "lost"}, headers=CASEWORKER)
    ).status_code == 422


async def test_consent_tasks_are_site_scoped(app: RunningApp) -> None:
    household = await known_household(
        app, needs=[NeedType.PSYCHOSOCIAL_SUPPORT], referral_sharing=False
    )
    mine = (
        await app.client.get(
            "/v1/consent-tasks", params={"household_id": str(household)}, headers=MANAGER
        )
    ).json()["items"]
    assert [t["service_type"] for t in mine] == ["psychosocial"]
    elsewhere = auth(Role.CASEWORKER, sites=[OTHER_SITE])
    assert (
        await app.client.get(
            "/v1/consent-tasks", params={"household_id": str(household)}, headers=elsewhere
        )
    ).json()["items"] == []
    provider = provider_auth(uuid.uuid4())
    assert (await app.client.get("/v1/consent-tasks", headers=provider)).status_code == 403

"""Sensitive referrals (issue #15, item 8): counter-trafficking and GBV referrals are seen only by
the provider they are with, the staff member who made them and protection focal points; managers
see them in counts (small cells suppressed); their events never name the service type; providers
see a per-provider pseudonym of the household, never its id."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.referral.domain.referrals import household_ref
from services.referral.domain.vocabulary import SENSITIVE_SERVICE_TYPES, ServiceType
from services.referral.settings import ReferralSettings
from shared.auth import Role
from shared.events.referral import SENSITIVE_SERVICE_LABEL
from shared.vocabulary import NeedType, Vulnerability
from tests.referral.factories import (
    ADMIN,
    CASEWORKER,
    FOCAL_POINT,
    MANAGER,
    SITE,
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
    staged,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def app(infra) -> AsyncIterator[RunningApp]:
    async with running_app(infra) as running:
        yield running


async def listed(app: RunningApp, headers: dict[str, str], **params: Any) -> list[str]:
    response = await app.client.get("/v1/referrals", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


async def refusals(app: RunningApp) -> int:
    return sum(
        1
        for a in await audit_records(app.engine)
        if a["resource_type"] == "request" and a["outcome"] == "not_found"
    )


async def assert_hidden(app: RunningApp, referral_id: str, headers: dict[str, str]) -> None:
    """404 exactly like a referral that does not exist, and audited as a refusal."""
    before = await refusals(app)
    hidden = await app.client.get(f"/v1/referrals/{referral_id}", headers=headers)
    missing_id = uuid.uuid4()
    missing = await app.client.get(f"/v1/referrals/{missing_id}", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    shape = {k: v for k, v in missing.json().items() if k not in ("detail", "instance")}
    assert {k: v for k, v in hidden.json().items() if k not in ("detail", "instance")} == shape
    assert set(hidden.json()) == set(missing.json())
    assert hidden.json()["detail"] == missing.json()["detail"].replace(str(missing_id), referral_id)
    assert await refusals(app) == before + 1


async def test_gbv_and_counter_trafficking_are_the_sensitive_service_types() -> None:
    assert ServiceType("gbv") is ServiceType.GBV
    assert {ServiceType.COUNTER_TRAFFICKING, ServiceType.GBV} == SENSITIVE_SERVICE_TYPES
    assert [t for t in ServiceType if t.sensitive] == [
        ServiceType.COUNTER_TRAFFICKING,
        ServiceType.GBV,
    ]


async def test_a_sensitive_referral_is_seen_by_its_provider_and_focal_points_only(
    app: RunningApp,
) -> None:
    admin1, admin2 = area()
    shelter = await new_provider(app, regions=[admin1], services=["counter_trafficking"])
    clinic = await new_provider(app, regions=[admin1], services=["medical"])
    household = await known_household(
        app,
        admin1=admin1,
        admin2=admin2,
        needs=[NeedType.MEDICAL_CARE],
        vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING],
    )
    both = await app.client.get(
        "/v1/referrals", params={"household_id": str(household)}, headers=FOCAL_POINT
    )
    by_type = {r["service_type"]: r for r in both.json()["items"]}
    assert set(by_type) == {"medical", "counter_trafficking"}
    sensitive, medical = by_type["counter_trafficking"]["id"], by_type["medical"]["id"]
    assert by_type["counter_trafficking"]["provider_id"] == shelter

    outsiders = {
        "caseworker": CASEWORKER,
        "manager": MANAGER,
        "manager of every site": auth(Role.MANAGER, sites=["*"]),
        "caseworker and manager": auth(Role.CASEWORKER, Role.MANAGER),
        "another provider": provider_auth(clinic),
    }
    for who, headers in outsiders.items():
        seen = await listed(app, headers, household_id=str(household))
        assert sensitive not in seen, who
        if who != "another provider":
            assert medical in seen, who
        await assert_hidden(app, sensitive, headers)
    for headers in (auth(Role.FIELD_STAFF), ADMIN):
        response = await app.client.get(f"/v1/referrals/{sensitive}", headers=headers)
        assert response.status_code == 403

    # nor can they act on it
    assert (await act(app, sensitive, "cancel", CASEWORKER)).status_code == 404
    assert (await act(app, sensitive, "cancel", MANAGER)).status_code == 404
    revoke = {"reason_code": "safeguarding"}
    assert (await act(app, sensitive, "revoke", MANAGER, revoke)).status_code == 404

    mine = await app.client.get(f"/v1/referrals/{sensitive}", headers=provider_auth(shelter))
    assert mine.status_code == 200 and mine.json()["service_type"] == "counter_trafficking"
    assert sensitive in await listed(app, provider_auth(shelter))
    focal = await app.client.get(f"/v1/referrals/{sensitive}", headers=FOCAL_POINT)
    assert focal.status_code == 200 and focal.json()["sensitive"] is True
    # a focal point of another site does not
    await assert_hidden(app, sensitive, auth(Role.PROTECTION_FOCAL_POINT, sites=["MDA-XYZ"]))
    revoked = await act(app, sensitive, "revoke", FOCAL_POINT, revoke)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"


async def test_a_manual_gbv_referral_is_seen_by_the_caseworker_who_made_it(
    app: RunningApp,
) -> None:
    admin1, admin2 = area()
    provider = await new_provider(app, regions=[admin1], services=["gbv"])
    household = await known_household(app, admin1=admin1, admin2=admin2)
    maker = auth(Role.CASEWORKER, sub=f"caseworker-{uuid.uuid4().hex[:8]}")
    colleague = auth(Role.CASEWORKER)
    created = await refer(app, household, "gbv", headers=maker)
    assert created.status_code == 201, created.text
    referral = created.json()
    assert referral["sensitive"] is True and referral["provider_id"] == provider

    assert referral["id"] in await listed(app, maker, household_id=str(household))
    assert (
        await app.client.get(f"/v1/referrals/{referral['id']}", headers=maker)
    ).status_code == 200
    for headers in (colleague, MANAGER):
        assert await listed(app, headers, household_id=str(household)) == []
        await assert_hidden(app, referral["id"], headers)
    assert referral["id"] in await listed(app, FOCAL_POINT, household_id=str(household))

    # a second referral for the same household: the duplicate is named only to who may see it
    again = await refer(app, household, "gbv", headers=colleague)
    assert again.status_code == 409 and "referral_id" not in again.json()
    again = await refer(app, household, "gbv", headers=maker)
    assert again.status_code == 409 and again.json()["referral_id"] == referral["id"]
    cancelled = await act(app, referral["id"], "cancel", maker)
    assert cancelled.status_code == 200


async def test_managers_see_sensitive_referrals_as_counts_with_small_cells_suppressed(
    app: RunningApp,
) -> None:
    site = f"MDA-C{uuid.uuid4().hex[:6].upper()}"
    admin1, admin2 = area()
    await new_provider(app, regions=[admin1], services=["medical", "counter_trafficking"])
    for n in range(6):
        await known_household(
            app,
            site_id=site,
            admin1=admin1,
            admin2=admin2,
            needs=[NeedType.MEDICAL_CARE],
            vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING] if n < 2 else [],
        )
    manager = auth(Role.MANAGER, sites=[site])
    assert len(await listed(app, manager)) == 6  # rows: the medical ones only

    async def counts(headers: dict[str, str] = manager, **params: str) -> dict[str, Any]:
        response = await app.client.get("/v1/referrals/counts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return {"min_cell": body["min_cell"]} | {
            f"{c['service_type']}/{c['status']}": c["count"] for c in body["items"]
        }

    assert await counts() == {"min_cell": 5, "medical/sent": 6, "counter_trafficking/sent": None}
    app.settings.report_min_cell = 2
    try:
        assert await counts() == {"min_cell": 2, "medical/sent": 6, "counter_trafficking/sent": 2}
        assert await counts(site_id=site) == await counts()
        assert await counts(site_id=SITE) == {"min_cell": 2}  # not one of the manager's sites
        assert await counts(auth(Role.MANAGER, sites=["MDA-XYZ"])) == {"min_cell": 2}
    finally:
        app.settings.report_min_cell = 5
    assert any(a["action"] == "referral.count" for a in await audit_records(app.engine))
    provider = provider_auth(uuid.uuid4())
    assert (await app.client.get("/v1/referrals/counts", headers=provider)).status_code == 403


async def test_events_never_name_a_sensitive_service_type(app: RunningApp) -> None:
    admin1, admin2 = area()
    shelter = await new_provider(app, regions=[admin1], services=["counter_trafficking"])
    household = await known_household(
        app, admin1=admin1, admin2=admin2, vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING]
    )
    (referral,) = await listed(app, FOCAL_POINT, household_id=str(household))
    assert (await act(app, referral, "accept", provider_auth(shelter))).status_code == 200
    events = await referral_events(app.engine, household)
    assert [e.type for e in events] == ["ReferralCreated", "ReferralSent", "ReferralAccepted"]
    for event in events:
        assert event.data["service_type"] == SENSITIVE_SERVICE_LABEL == "protection"
        assert event.data["sensitive"] is True
    sent = events[1].data
    assert sent["provider_id"] == shelter
    assert [sent[k] for k in ("provider_name", "provider_address", "provider_phone")] == [None] * 3
    assert sent["provider_opening_hours"] is None
    everything = json.dumps([(e.data, e.headers) for e in await staged(app.engine)])
    assert str(household) in everything and "counter_trafficking" not in everything

    # the consent task of a household that did not consent: the same
    waiting = await known_household(
        app,
        admin1=admin1,
        admin2=admin2,
        referral_sharing=False,
        vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING],
    )
    (task,) = await referral_events(app.engine, waiting)
    assert task.type == "ConsentFollowUpRequested"
    assert (task.data["service_type"], task.data["sensitive"]) == ("protection", True)

    async def tasks(headers: dict[str, str]) -> list[str]:
        response = await app.client.get(
            "/v1/consent-tasks", params={"household_id": str(waiting)}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [t["service_type"] for t in response.json()["items"]]

    assert await tasks(CASEWORKER) == [] and await tasks(MANAGER) == []
    assert await tasks(FOCAL_POINT) == ["counter_trafficking"]


async def test_a_queued_sensitive_referral_is_assigned_by_a_focal_point_not_a_manager(
    app: RunningApp,
) -> None:
    admin1, admin2 = area()
    household = await known_household(
        app, admin1=admin1, admin2=admin2, vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING]
    )
    (referral,) = await listed(app, FOCAL_POINT, household_id=str(household))
    assert await listed(app, MANAGER, status="unassigned", household_id=str(household)) == []
    queued = (await referral_events(app.engine, household))[-1]
    assert queued.type == "ReferralEscalated" and queued.data["service_type"] == "protection"
    shelter = await new_provider(app, regions=[admin1], services=["counter_trafficking"])
    body = {"provider_id": shelter}
    assert (await act(app, referral, "assign", MANAGER, body)).status_code == 404
    assigned = await act(app, referral, "assign", FOCAL_POINT, body)
    assert assigned.status_code == 200 and assigned.json()["provider_id"] == shelter


async def test_providers_see_a_household_pseudonym_of_their_own(app: RunningApp) -> None:
    admin1, admin2 = area()
    clinic = await new_provider(app, regions=[admin1], services=["medical", "legal"])
    counsellor = await new_provider(app, regions=[admin1], services=["psychosocial"])
    household = await known_household(
        app,
        admin1=admin1,
        admin2=admin2,
        needs=[NeedType.MEDICAL_CARE, NeedType.LEGAL_AID, NeedType.PSYCHOSOCIAL_SUPPORT],
    )
    neighbour = await known_household(
        app, admin1=admin1, admin2=admin2, needs=[NeedType.MEDICAL_CARE]
    )

    async def refs(provider: str) -> dict[str, list[str]]:
        response = await app.client.get("/v1/referrals", headers=provider_auth(provider))
        found: dict[str, list[str]] = {}
        for view in response.json()["items"]:
            assert "household_id" not in view
            found.setdefault(view["household_ref"], []).append(view["id"])
        return found

    at_clinic, at_counsellor = await refs(clinic), await refs(counsellor)
    key = app.settings.pseudonym_key()
    mine = household_ref(key, uuid.UUID(clinic), household)
    assert len(at_clinic[mine]) == 2  # the same pseudonym on both of its referrals
    assert household_ref(key, uuid.UUID(clinic), neighbour) in at_clinic
    theirs = household_ref(key, uuid.UUID(counsellor), household)
    assert list(at_counsellor) == [theirs] and theirs != mine
    for ref in (mine, theirs):
        assert str(household) not in ref and household.hex not in ref
    accepted = await act(app, at_clinic[mine][0], "accept", provider_auth(clinic))
    assert accepted.json()["household_ref"] == mine
    detail = await app.client.get(
        f"/v1/referrals/{at_clinic[mine][1]}", headers=provider_auth(clinic)
    )
    assert detail.json()["household_ref"] == mine


async def test_the_pseudonym_key_is_set_or_derived_from_the_audit_chain_key() -> None:
    provider, household = uuid.uuid4(), uuid.uuid4()
    derived = ReferralSettings().pseudonym_key()
    other_chain = ReferralSettings(audit_chain_key="another-chain-key").pseudonym_key()
    chosen = ReferralSettings(household_pseudonym_key="a-key-of-its-own").pseudonym_key()
    assert len({derived, other_chain, chosen}) == 3
    assert derived != ReferralSettings().chain_key("referral")  # a key of its own, not the chain's
    refs = {household_ref(key, provider, household) for key in (derived, other_chain, chosen)}
    assert len(refs) == 3

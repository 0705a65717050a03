"""Every mutating endpoint of every service (POST, PUT, PATCH, DELETE, enumerated from the
apps) emits exactly one AuditEvent on haven.audit.v1 per successful change.

Each change is sent with its own X-Correlation-ID; the audit records are matched to it by
their ``ce_correlationid`` header, read from the offsets the topic had before the first one.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events.catalog import AUDIT
from shared.events.envelope import headers_to_dict
from tests.e2e.flows import ADMIN, household_body, until_ok
from tests.e2e.stack import SERVICES, Role, token
from tests.observability.scenario import ObservedRun
from tests.support import eventually

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
Route = tuple[str, str, str]  # service, method, path template


def mutating_routes(run: ObservedRun) -> set[Route]:
    """Every (service, method, path) of the apps' OpenAPI documents that changes something."""
    return {
        (service, method.upper(), path)
        for service in SERVICES
        for path, operations in run.stack.apps[service].openapi()["paths"].items()
        for method in operations
        if method.upper() in MUTATING
    }


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(AUDIT.name, p) for p in range(AUDIT.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def audit_correlations(
    bootstrap: str, since: dict[TopicPartition, int]
) -> Counter[tuple[str, str]]:
    """How many audit records each (correlation id, service) has, from ``since`` to the end
    (the audit topic is keyed by the service that made the change)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    seen: Counter[tuple[str, str]] = Counter()
    try:
        consumer.assign(list(since))
        ends = await consumer.end_offsets(list(since))
        for partition, offset in since.items():
            consumer.seek(partition, offset)
        remaining = {p for p in since if ends[p] > since[p]}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for partition, records in batches.items():
                for record in records:
                    correlation = headers_to_dict(record.headers or ()).get("ce_correlationid")
                    if correlation and record.key:
                        seen[(correlation, record.key.decode())] += 1
                if records and records[-1].offset + 1 >= ends[partition]:
                    remaining.discard(partition)
            if not batches:
                break
    finally:
        await consumer.stop()
    return seen


@dataclass
class Changes:
    """Sends changes, each with its own correlation id, and remembers what it expects."""

    run: ObservedRun
    expected: dict[str, tuple[Route, int]] = field(default_factory=dict)

    async def send(
        self,
        route: Route,
        path: str,
        headers: dict[str, str],
        body: Any = None,
        *,
        audits: int = 1,
    ) -> httpx.Response:
        service, method, _ = route
        correlation = f"audit-{uuid.uuid4().hex}"
        response = await self.run.stack[service].request(
            method,
            path,
            json=body,
            headers={**headers, "X-Correlation-ID": correlation},
        )
        assert response.is_success, (route, response.status_code, response.text)
        self.expected[correlation] = (route, audits)
        return response


async def etag(run: ObservedRun, household_id: str, headers: dict[str, str]) -> dict[str, str]:
    response = await run.stack["registration"].get(
        f"/v1/households/{household_id}", headers=headers
    )
    assert response.status_code == 200, response.text
    return {**headers, "If-Match": response.headers["ETag"]}


async def test_every_mutating_endpoint_emits_exactly_one_audit_event_per_change(
    observed: ObservedRun,
) -> None:
    run, facts = observed, observed.facts
    site, household = facts["site"], facts["household"]["id"]
    since = await end_offsets(run.stack.bootstrap)
    changes = Changes(run)
    send = changes.send
    field_staff = token(Role.FIELD_STAFF, sites=(site,), sub="field-audit")
    operator = token(Role.WAREHOUSE_OPERATOR, sites=(site,), sub="operator-audit")
    manager = token(Role.MANAGER, sites=(site,), sub="manager-audit")
    caseworker = token(Role.CASEWORKER, sites=(site,), sub="caseworker-audit")

    # --- registration ------------------------------------------------------------------
    R = "registration"
    new_site = "MDA-A" + uuid.uuid4().hex[:2].upper()
    await send(
        (R, "POST", "/v1/sites"),
        "/v1/sites",
        ADMIN,
        {
            "id": new_site,
            "name": "Audit site",
            "country": "MDA",
            "admin1": "MD01",
            "admin2": "MD0101",
            "timezone": "Europe/Chisinau",
        },
    )
    sheltered_body = household_body(
        site,
        given="Надія",
        family="Савчук",
        needs=[
            {"type": "shelter", "priority": "high"},
            {"type": "medical_care", "priority": "high"},
        ],
        referral_sharing=True,
    )
    sheltered = (
        await send(
            (R, "POST", "/v1/households"),
            "/v1/households",
            {**field_staff, "Idempotency-Key": str(uuid.uuid4())},
            sheltered_body,
        )
    ).json()["id"]
    await send(
        (R, "PATCH", "/v1/households/{household_id}"),
        f"/v1/households/{household}",
        await etag(run, household, field_staff),
        {"arrival_date": "2026-11-02"},
    )
    added = await send(
        (R, "POST", "/v1/households/{household_id}/members"),
        f"/v1/households/{household}/members",
        await etag(run, household, field_staff),
        {
            "given_name": "Остап",
            "family_name": "Гнатюк",
            "sex": "male",
            "date_of_birth": "2019-03-03",
            "relationship": "child",
            "nationality": "UKR",
        },
    )
    (member,) = [m["id"] for m in added.json()["members"] if m["given_name"] == "Остап"]
    await send(
        (R, "PATCH", "/v1/households/{household_id}/members/{member_id}"),
        f"/v1/households/{household}/members/{member}",
        await etag(run, household, field_staff),
        {"sex": "female"},
    )
    await send(
        (R, "DELETE", "/v1/households/{household_id}/members/{member_id}"),
        f"/v1/households/{household}/members/{member}",
        await etag(run, household, field_staff),
    )
    await send(
        (R, "PUT", "/v1/households/{household_id}/needs"),
        f"/v1/households/{household}/needs",
        await etag(run, household, field_staff),
        {
            "needs": [
                {"type": "medical_care", "priority": "urgent"},
                {"type": "food", "priority": "urgent"},
            ]
        },
    )
    reviews = await run.stack[R].get("/v1/duplicates", params={"site_id": site}, headers=ADMIN)
    (review,) = [
        r for r in reviews.json()["items"] if r["household_id"] == facts["duplicate"]["id"]
    ]
    await send(
        (R, "POST", "/v1/duplicates/{review_id}/resolve"),
        f"/v1/duplicates/{review['id']}/resolve",
        token(Role.SUPERVISOR, sites=(site,), sub="supervisor-audit"),  # four eyes
        {"action": "not_duplicate"},
    )
    await send(
        (R, "POST", "/v1/households/{household_id}/deactivate"),
        f"/v1/households/{facts['duplicate']['id']}/deactivate",
        await etag(run, facts["duplicate"]["id"], field_staff),
        {"reason": "relocated"},
    )

    # --- distribution ------------------------------------------------------------------
    D = "distribution"
    sku = "KIT-" + uuid.uuid4().hex[:6].upper()
    await send(
        (D, "POST", "/v1/items"),
        "/v1/items",
        ADMIN,
        {"sku": sku, "name": "Hygiene kit", "category": "hygiene", "unit": "kit"},
    )
    second = (
        await send(
            (D, "POST", "/v1/warehouses"),
            "/v1/warehouses",
            ADMIN,
            {"name": f"Audit warehouse {site}", "site_id": site, "location": {"admin1": "MD01"}},
        )
    ).json()["id"]
    warehouse = facts["warehouse"]
    await send(
        (D, "PUT", "/v1/warehouses/{warehouse_id}/reorder-levels/{sku}"),
        f"/v1/warehouses/{warehouse}/reorder-levels/{sku}",
        ADMIN,
        {"reorder_level": 5},
    )
    await send(
        (D, "POST", "/v1/warehouses/{warehouse_id}/receipts"),
        f"/v1/warehouses/{warehouse}/receipts",
        operator,
        {"lines": [{"sku": sku, "quantity": 30}], "reference": "GRN-AUDIT-1"},
    )
    await send(
        (D, "POST", "/v1/transfers"),
        "/v1/transfers",
        operator,
        {
            "from_warehouse_id": warehouse,
            "to_warehouse_id": second,
            "lines": [{"sku": sku, "quantity": 3}],
            "reference": "TR-AUDIT-1",
        },
    )
    await send(
        (D, "POST", "/v1/warehouses/{warehouse_id}/adjustments"),
        f"/v1/warehouses/{warehouse}/adjustments",
        operator,
        {"lines": [{"sku": sku, "quantity": -1, "reason": "damaged"}]},
    )
    await until_ok(
        run.stack,
        D,
        f"/v1/households/{sheltered}/entitlements",
        operator,
        "the sheltered household in distribution",
    )
    recorded = (
        await send(
            (D, "POST", "/v1/distributions"),
            "/v1/distributions",
            operator,
            {
                "household_id": sheltered,
                "warehouse_id": warehouse,
                "lines": [{"sku": facts["sku"], "quantity": 1}],
                "client_ref": f"audit-{uuid.uuid4()}",
            },
        )
    ).json()["id"]
    await send(
        (D, "POST", "/v1/distributions/{distribution_id}/void"),
        f"/v1/distributions/{recorded}/void",
        manager,
        {"reason": "recorded_in_error"},
    )
    await send(
        (D, "POST", "/v1/households/{household_id}/prescriptions"),
        f"/v1/households/{sheltered}/prescriptions",
        manager,
        {"reference": f"RX-AUDIT-{uuid.uuid4().hex[:8]}"},
    )
    shelter = (
        await send(
            (D, "POST", "/v1/shelters"),
            "/v1/shelters",
            ADMIN,
            {
                "name": f"Audit shelter {site}",
                "site_id": site,
                "capacity_beds": 10,
                "floor_area_m2": "80.00",
            },
        )
    ).json()["id"]
    allocation = (
        await send(
            (D, "POST", "/v1/shelters/{shelter_id}/allocations"),
            f"/v1/shelters/{shelter}/allocations",
            operator,
            {"household_id": sheltered, "beds": 2, "check_in": "2026-11-20"},
        )
    ).json()["allocation"]["id"]
    await send(
        (D, "POST", "/v1/shelters/{shelter_id}/allocations/{allocation_id}/check-out"),
        f"/v1/shelters/{shelter}/allocations/{allocation}/check-out",
        operator,
        {"reason": "moved"},
    )

    # --- referral ----------------------------------------------------------------------
    F = "referral"
    legal = (
        await send(
            (F, "POST", "/v1/referrals"),
            "/v1/referrals",
            caseworker,
            {
                "household_id": household,
                "service_type": "legal",
                "reason": "Needs advice on residence permit",
            },
        )
    ).json()
    lawyer = (
        await send(
            (F, "POST", "/v1/providers"),
            "/v1/providers",
            ADMIN,
            {
                "name": f"Lawyers {uuid.uuid4().hex[:6]}",
                "services": ["legal"],
                "regions": ["MD0101"],
                "languages": ["uk"],
                "capacity": 3,
                "opening_hours": "Mo-Fr 09:00-17:00",
            },
        )
    ).json()["id"]
    await send(
        (F, "PATCH", "/v1/providers/{provider_id}"),
        f"/v1/providers/{lawyer}",
        ADMIN,
        {"capacity": 4},
    )
    exported = (await run.stack[F].get("/v1/providers/hsds", headers=ADMIN)).json()
    organization = next(o for o in exported["contents"] if o["id"] == lawyer)
    imported_id = str(uuid.uuid4())
    imported = await send(
        (F, "POST", "/v1/providers/hsds"),
        "/v1/providers/hsds",
        ADMIN,
        {"contents": [{**organization, "id": imported_id, "name": f"Imported {imported_id[:6]}"}]},
    )
    assert imported.json()["created"] == [imported_id], imported.json()
    if legal["status"] != "unassigned":  # routed at once; the lawyers came later
        raise AssertionError(legal)
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/assign"),
        f"/v1/referrals/{legal['id']}/assign",
        manager,
        {"provider_id": lawyer},
    )
    lawyers = token(Role.PROVIDER, sites=(), org=lawyer, sub="lawyer-audit")
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/decline"),
        f"/v1/referrals/{legal['id']}/decline",
        lawyers,
        {"reason_code": "no_capacity"},
    )
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/cancel"),
        f"/v1/referrals/{legal['id']}/cancel",
        caseworker,
        {"reason_code": "no_longer_needed"},
    )
    clinic = token(Role.PROVIDER, sites=(), org=facts["provider"], sub="clinic-audit")
    medical = facts["referral"]
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/start"), f"/v1/referrals/{medical}/start", clinic
    )
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/complete"),
        f"/v1/referrals/{medical}/complete",
        clinic,
    )
    psychosocial = (
        await send(
            (F, "POST", "/v1/referrals"),
            "/v1/referrals",
            caseworker,
            {
                "household_id": household,
                "service_type": "psychosocial",
                "reason": "Asked for counselling",
            },
        )
    ).json()["id"]
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/revoke"),
        f"/v1/referrals/{psychosocial}/revoke",
        manager,
        {"reason_code": "consent_withdrawn"},
    )
    # The sheltered household's medical need was referred automatically, to the clinic.
    automatic: dict[str, Any] = {}

    async def sent_to_the_clinic() -> bool:
        listed = await run.stack[F].get(
            "/v1/referrals", params={"household_id": sheltered}, headers=caseworker
        )
        automatic.update(next((r for r in listed.json()["items"] if r["status"] == "sent"), {}))
        return bool(automatic)

    await eventually(sent_to_the_clinic, timeout=60, what="the automatic medical referral")
    await send(
        (F, "POST", "/v1/referrals/{referral_id}/accept"),
        f"/v1/referrals/{automatic['id']}/accept",
        clinic,
    )

    # --- notifications -----------------------------------------------------------------
    N = "notifications"
    await send(
        (N, "PUT", "/v1/templates/{event_type}/{language}"),
        "/v1/templates/HouseholdRegistered/ro",
        ADMIN,
        {"body": "Haven: dosarul dumneavoastră este {{ case_number }}."},
    )
    recipient = (
        await send(
            (N, "POST", "/v1/staff-recipients"),
            "/v1/staff-recipients",
            ADMIN,
            {
                "role": "manager",
                "site_id": site,
                "channel": "email",
                "address": "audit-manager@example.org",
            },
        )
    ).json()["id"]
    await send(
        (N, "DELETE", "/v1/staff-recipients/{recipient_id}"),
        f"/v1/staff-recipients/{recipient}",
        ADMIN,
    )
    retryable: list[str] = []

    async def a_retryable_notification() -> bool:
        for status in ("skipped", "dead", "failed"):
            listed = await run.stack[N].get(
                "/v1/notifications", params={"status": status}, headers=ADMIN
            )
            retryable.extend(n["id"] for n in listed.json()["items"])
        return bool(retryable)

    await eventually(a_retryable_notification, timeout=30, what="a notification to retry")
    await send(
        (N, "POST", "/v1/notifications/{notification_id}/retry"),
        f"/v1/notifications/{retryable[0]}/retry",
        ADMIN,
    )

    # Erasure last: nothing above may still need the household.
    await send((R, "DELETE", "/v1/households/{household_id}"), f"/v1/households/{sheltered}", ADMIN)

    covered = {route for route, _ in changes.expected.values()}
    assert mutating_routes(run) == covered, "every mutating endpoint is exercised"

    found: Counter[tuple[str, str]] = Counter()

    async def all_published() -> bool:
        found.clear()
        found.update(await audit_correlations(run.stack.bootstrap, since))
        return all(found[(c, r[0])] >= n for c, (r, n) in changes.expected.items())

    with contextlib.suppress(AssertionError):  # the comparison below says which routes
        await eventually(all_published, timeout=30, what="the audit events of every change")
    wrong = {
        route: found[(correlation, route[0])]
        for correlation, (route, audits) in changes.expected.items()
        if found[(correlation, route[0])] != audits
    }
    assert wrong == {}, "routes whose change did not emit exactly one audit event"

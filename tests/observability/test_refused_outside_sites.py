"""A resource of a site outside the caller's token answers 404 like a missing one, and each
such refusal is audited once (outcome not_found) by the service that refused it."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from typing import Any

from tests.e2e.flows import ADMIN, household_body
from tests.e2e.stack import Role, token
from tests.observability.scenario import ObservedRun
from tests.observability.test_audit_per_change import audit_correlations, end_offsets
from tests.support import eventually


async def test_other_sites_resources_are_404_and_audited(observed: ObservedRun) -> None:
    facts = observed.facts
    elsewhere = "MDA-ZZZ"
    staff = {
        "registration": token(Role.FIELD_STAFF, sites=(elsewhere,), sub="field-elsewhere"),
        "distribution": token(Role.WAREHOUSE_OPERATOR, sites=(elsewhere,), sub="op-elsewhere"),
        "referral": token(Role.CASEWORKER, sites=(elsewhere,), sub="cw-elsewhere"),
        "notifications": token(Role.MANAGER, sites=(elsewhere,), sub="manager-elsewhere"),
    }
    listed = await observed.stack["notifications"].get(
        "/v1/notifications", params={"household_id": facts["household"]["id"]}, headers=ADMIN
    )
    notification = listed.json()["items"][0]["id"]
    manager = token(Role.MANAGER, sites=(elsewhere,), sub="manager-elsewhere")
    site = facts["site"]
    newcomer = household_body(site, given="Refused", family="Elsewhere")
    requests: list[tuple[str, str, str, dict[str, Any]]] = [
        ("registration", "GET", f"/v1/households/{facts['household']['id']}", {}),
        ("registration", "POST", "/v1/households", {"json": newcomer}),
        ("registration", "GET", "/v1/reports/households.csv", {"params": {"site_id": site}}),
        ("distribution", "GET", f"/v1/warehouses/{facts['warehouse']}", {}),
        ("distribution", "GET", f"/v1/households/{facts['household']['id']}/entitlements", {}),
        ("distribution", "GET", f"/v1/shelters/{facts['shelter']}", {}),
        ("distribution", "GET", f"/v1/distributions/{facts['distribution']}", {}),
        (
            "distribution",
            "GET",
            "/v1/reports/distributions",
            {"params": {"site_id": site}, "headers": manager},
        ),
        ("referral", "GET", f"/v1/referrals/{facts['referral']}", {}),
        ("notifications", "GET", f"/v1/notifications/{notification}", {}),
    ]
    since = await end_offsets(observed.stack.bootstrap)
    expected: dict[str, tuple[str, str]] = {}
    for service, method, path, options in requests:
        correlation = f"refused-{uuid.uuid4().hex}"
        headers = {**options.pop("headers", staff[service]), "X-Correlation-ID": correlation}
        response = await observed.stack[service].request(method, path, headers=headers, **options)
        assert response.status_code == 404, (method, path, response.text)
        expected[correlation] = (service, f"{method} {path}")

    found: Counter[tuple[str, str]] = Counter()

    async def all_audited() -> bool:
        found.clear()
        found.update(await audit_correlations(observed.stack.bootstrap, since))
        return all(found[(c, s)] >= 1 for c, (s, _) in expected.items())

    with contextlib.suppress(AssertionError):  # the comparison below says which
        await eventually(all_audited, timeout=20, what="the refusals audited")
    wrong = {path: found[(c, s)] for c, (s, path) in expected.items() if found[(c, s)] != 1}
    assert wrong == {}, "refusals not audited exactly once"

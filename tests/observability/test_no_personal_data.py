"""No name, phone number or document number of the scenario reaches a log record or the
/metrics text of any service."""

from __future__ import annotations

from tests.e2e.stack import SERVICES
from tests.observability.scenario import DOCUMENT, PERSON, PHONE, ObservedRun

SECRETS = [*PERSON.values(), PHONE, PHONE.lstrip("+"), DOCUMENT]


def test_the_scenario_really_logged_something(observed: ObservedRun) -> None:
    assert len(observed.logs.lines) > 20


def test_no_log_record_carries_personal_data(observed: ObservedRun) -> None:
    leaks = [
        (secret, line[:300])
        for line in observed.logs.lines
        for secret in SECRETS
        if secret.casefold() in line.casefold()
    ]
    assert not leaks


async def test_no_metrics_text_carries_personal_data(observed: ObservedRun) -> None:
    for service in SERVICES:
        response = await observed.stack[service].get("/metrics")
        assert response.status_code == 200
        text = response.text.casefold()
        assert "haven_" in text
        assert not [s for s in SECRETS if s.casefold() in text], service

"""Against a real Prometheus scraping the four services after a scenario: every dashboard
panel's PromQL parses and returns data, every alert rule parses and is evaluated healthily."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import yaml

from haven.devstack.prometheus import prometheus_available
from tests.observability.dashboards import queries
from tests.observability.scenario import RULE_FILES, ObservedRun

pytestmark = pytest.mark.skipif(
    not prometheus_available(), reason="prometheus not installed (apt-get install prometheus)"
)

DATA_TIMEOUT_S = 60.0


def rule_expressions() -> list[tuple[str, str]]:
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


async def instant(client: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    response = await client.get("/api/v1/query", params={"query": expr})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body


async def test_every_dashboard_panel_returns_data(observed: ObservedRun) -> None:
    assert observed.prometheus is not None
    pending = {str(q): q for q in queries()}
    async with httpx.AsyncClient(base_url=observed.prometheus.url, trust_env=False) as client:
        deadline = time.monotonic() + DATA_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for name, query in list(pending.items()):
                body = await instant(client, query.promql)  # a parse error fails here at once
                if body["data"]["result"]:
                    del pending[name]
            if pending:
                await asyncio.sleep(1)
    assert not pending, f"panels without data after {DATA_TIMEOUT_S:.0f} s: {sorted(pending)}"


async def test_every_alert_rule_parses_and_prometheus_evaluates_it(observed: ObservedRun) -> None:
    assert observed.prometheus is not None
    expected = rule_expressions()
    async with httpx.AsyncClient(base_url=observed.prometheus.url, trust_env=False) as client:
        for _, expr in expected:
            await instant(client, expr)

        evaluated: dict[str, dict[str, Any]] = {}

        async def all_evaluated() -> bool:
            groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            evaluated.update({r["name"]: r for g in groups for r in g["rules"]})
            return all(
                evaluated.get(name, {}).get("lastEvaluation", "0001").startswith("20")
                for name, _ in expected
            )

        deadline = time.monotonic() + 15
        while not await all_evaluated() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
    assert sorted(evaluated) == sorted(name for name, _ in expected)
    for name, rule in evaluated.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))

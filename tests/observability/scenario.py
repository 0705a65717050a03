"""One end-to-end run for the observability tests: the four services (tests/e2e/stack.py) served
over real TCP ports, a real Prometheus scraping them every second, every log record and span
captured, and a scenario touching every business metric."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from haven.devstack.prometheus import LocalPrometheus, prometheus_available
from shared.telemetry import setup_tracing
from tests.e2e.flows import ADMIN, create_site, household_body, register, until_ok
from tests.e2e.stack import SERVICES, Role, Stack, running_stack, token
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus").glob("*.rules.yml"))

# The personal data the scenario uses: no log record and no /metrics text may contain it.
PERSON = {"given": "Ярослава", "family": "Перепелиця", "latin_family": "Perepelytsia"}
PHONE = "+37369555123"
DOCUMENT = "FX7391245"


class CapturedLogs(logging.Handler):
    """Every log record that reaches the root logger, rendered with all its fields."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = " ".join(f"{k}={v!r}" for k, v in vars(record).items() if k != "msg")
        self.lines.append(f"{record.getMessage()} {fields} {record.exc_text or ''}")


@dataclass
class ObservedRun:
    stack: Stack
    prometheus: LocalPrometheus | None  # None when no prometheus binary is installed
    logs: CapturedLogs
    spans: InMemorySpanExporter
    ports: dict[str, int]
    facts: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[None]:
    """Serve an app (whose lifespan already runs) on a TCP port in this event loop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), timeout=10, interval=0.05, what=f"port {port}")
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


def span_exporter() -> InMemorySpanExporter:
    """An in-memory exporter on the global tracer provider (installed unless one already is)."""
    setup_tracing("observability-tests")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@contextlib.asynccontextmanager
async def observed_run(infra: Any, state: Path) -> AsyncIterator[ObservedRun]:
    logs = CapturedLogs()
    root = logging.getLogger()
    root.addHandler(logs)
    spans = span_exporter()
    refresh = {f"HAVEN_{name.upper()}_METRICS_REFRESH_SECONDS": "0.5" for name in SERVICES}
    try:
        async with running_stack(infra, state, extra_env=refresh) as stack:
            ports = {name: free_port() for name in SERVICES}
            async with contextlib.AsyncExitStack() as servers:
                for name, app in stack.apps.items():
                    await servers.enter_async_context(served(app, ports[name]))
                prometheus = None
                if prometheus_available():
                    prometheus = LocalPrometheus(
                        state,
                        port=free_port(),
                        scrape_targets={name: f"127.0.0.1:{p}" for name, p in ports.items()},
                        rule_files=RULE_FILES,
                        scrape_interval="1s",
                    )
                    await asyncio.to_thread(prometheus.start)
                    servers.push_async_callback(asyncio.to_thread, prometheus.stop)
                    await asyncio.to_thread(prometheus.wait_ready)
                run = ObservedRun(stack, prometheus, logs, spans, ports)
                await scenario(run)
                yield run
    finally:
        root.removeHandler(logs)


async def scenario(run: ObservedRun) -> None:
    """Registration → distribution, referral (accepted) and notification; stock, a shelter, a
    probable duplicate waiting for review."""
    stack = run.stack
    referral, distribution = stack["referral"], stack["distribution"]
    provider = await referral.post(
        "/v1/providers",
        json={
            "name": f"Clinic {uuid.uuid4().hex[:6]}",
            "services": ["medical"],
            "regions": ["MD0101"],
            "languages": ["uk"],
            "capacity": 5,
            "opening_hours": "Mo-Fr 08:00-17:00",
        },
        headers=ADMIN,
    )
    assert provider.status_code == 201, provider.text
    provider_id = provider.json()["id"]

    site = await create_site(stack)
    body = household_body(
        site,
        given=PERSON["given"],
        family=PERSON["family"],
        phone=PHONE,
        contact=True,
        referral_sharing=True,
        document=DOCUMENT,
        needs=[
            {"type": "medical_care", "priority": "urgent"},
            {"type": "food", "priority": "high"},
        ],
        vulnerabilities=["disability_mobility"],
    )
    household = await register(stack, site, body)
    assert household["status"] == "active", household
    duplicate = await register(stack, site, body)
    run.facts.update(site=site, household=household, duplicate=duplicate, provider=provider_id)

    sku = "FOOD-" + uuid.uuid4().hex[:6].upper()
    created = await distribution.post(
        "/v1/items",
        json={"sku": sku, "name": "Food parcel", "category": "food", "unit": "parcel"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    warehouse = await distribution.post(
        "/v1/warehouses",
        json={"name": f"Warehouse {site}", "site_id": site, "location": {"admin1": "MD01"}},
        headers=ADMIN,
    )
    assert warehouse.status_code == 201, warehouse.text
    warehouse_id = warehouse.json()["id"]
    level = await distribution.put(
        f"/v1/warehouses/{warehouse_id}/reorder-levels/{sku}",
        json={"reorder_level": 100},
        headers=ADMIN,
    )
    assert level.status_code == 200, level.text
    operator = token(Role.WAREHOUSE_OPERATOR, sites=(site,), sub="operator-obs")
    receipt = await distribution.post(
        f"/v1/warehouses/{warehouse_id}/receipts",
        json={"lines": [{"sku": sku, "quantity": 40}], "reference": "GRN-OBS-1"},
        headers=operator,
    )
    assert receipt.status_code == 201, receipt.text
    shelter = await distribution.post(
        "/v1/shelters",
        json={
            "name": f"Shelter {site}",
            "site_id": site,
            "capacity_beds": 30,
            "floor_area_m2": "200.00",
        },
        headers=ADMIN,
    )
    assert shelter.status_code == 201, shelter.text
    run.facts.update(sku=sku, warehouse=warehouse_id, shelter=shelter.json()["id"])

    await until_ok(
        stack,
        "distribution",
        f"/v1/households/{household['id']}/entitlements",
        operator,
        "the household's entitlements in distribution",
    )
    issued = await distribution.post(
        "/v1/distributions",
        json={
            "household_id": household["id"],
            "warehouse_id": warehouse_id,
            "lines": [{"sku": sku, "quantity": 1}],
            "client_ref": f"obs-{uuid.uuid4()}",
        },
        headers=operator,
    )
    assert issued.status_code == 201, issued.text
    run.facts.update(distribution=issued.json()["id"])

    caseworker = token(Role.CASEWORKER, sites=(site,))
    sent: dict[str, Any] = {}

    async def referred() -> bool:
        response = await referral.get(
            "/v1/referrals", params={"household_id": household["id"]}, headers=caseworker
        )
        items = response.json()["items"]
        if items and items[0]["status"] == "sent":
            sent.update(items[0])
        return bool(sent)

    await eventually(referred, timeout=60, what="an automatic referral sent to the clinic")
    provider_staff = token(Role.PROVIDER, sites=(), org=provider_id, sub="clinic-obs")
    accepted = await referral.post(f"/v1/referrals/{sent['id']}/accept", headers=provider_staff)
    assert accepted.status_code == 200, accepted.text
    run.facts.update(referral=sent["id"])

    async def delivered() -> bool:
        response = await stack["notifications"].get(
            "/v1/notifications", params={"household_id": household["id"]}, headers=ADMIN
        )
        return any(n["status"] == "delivered" for n in response.json()["items"])

    await eventually(delivered, timeout=60, what="a notification delivered")
    # A request refused for lack of a token, so the error panels have a 4xx to show.
    refused = await stack["registration"].get(f"/v1/households/{household['id']}")
    assert refused.status_code == 401

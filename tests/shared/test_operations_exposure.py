"""Production can keep the API documents and metrics off the public API port."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from haven.devstack.processes import free_port
from shared.http import HttpSettings, create_app


def client(settings: HttpSettings) -> httpx.AsyncClient:
    app = create_app(
        service="exposure",
        title="t",
        version="1",
        routers=[],
        asyncapi_document=lambda: {"asyncapi": "3.0.0"},
        settings=settings,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


OPERATIONS = ("/docs", "/redoc", "/openapi.json", "/asyncapi.json", "/metrics")


async def test_by_default_documents_and_metrics_are_served() -> None:
    async with client(HttpSettings()) as c:
        for path in OPERATIONS:
            assert (await c.get(path)).status_code == 200, path


async def test_documents_can_be_turned_off_and_metrics_moved_off_the_api_port() -> None:
    async with client(HttpSettings(public_docs=False, metrics_port=9999)) as c:
        for path in OPERATIONS:
            assert (await c.get(path)).status_code == 404, path
        assert (await c.get("/healthz")).status_code == 200


@pytest.mark.slow
def test_a_served_process_exposes_metrics_on_the_internal_port_only() -> None:
    api_port, metrics_port = free_port(), free_port()
    script = (
        "from pathlib import Path\n"
        "from shared.service import ServiceDefinition, build_app, serve\n"
        "from shared.settings import ServiceSettings\n"
        f"s = ServiceSettings(service='exposure', http_port={api_port}, relay_enabled=False,"
        " consumers_enabled=False, migrate_on_start=False)\n"
        "d = ServiceDefinition(name='exposure', title='t', settings_class=ServiceSettings,"
        " migrations=Path('.'))\n"
        "serve(build_app(d, s))\n"
    )
    env = {
        "HAVEN_HTTP_METRICS_PORT": str(metrics_port),
        "HAVEN_HTTP_METRICS_HOST": "127.0.0.1",
        "HAVEN_HTTP_PUBLIC_DOCS": "false",
        "PATH": "/usr/bin:/bin",
    }
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert health.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{api_port}/metrics").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{api_port}/openapi.json").status_code == 404
        internal = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert internal.status_code == 200
        assert "http_requests_total" in internal.text
    finally:
        process.terminate()
        process.wait(timeout=20)

"""A failing write leaves none of its values in logs, spans, error texts or the server log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.db import create_engine, session_factory
from shared.http import create_app
from shared.telemetry import _JsonFormatter, _TextFormatter, setup_tracing

PHONE = "+37360" + str(uuid.uuid4().int)[:6]  # the personal value that must not leak
NAME = "Олена-" + uuid.uuid4().hex[:6]


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        setup_tracing("pii-test", extra_processors=[SimpleSpanProcessor(exporter)])
    return exporter


@pytest.fixture
async def database(infra: Any) -> AsyncIterator[str]:
    url = await infra.postgres_url_async(f"pii_{uuid.uuid4().hex[:8]}")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE person (phone text UNIQUE, name text)"))
        await conn.execute(
            sa.text("INSERT INTO person VALUES (:phone, :name)"), {"phone": PHONE, "name": NAME}
        )
    await engine.dispose()
    yield url


async def test_a_failing_write_leaks_no_value(
    database: str,
    infra: Any,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_engine(database)
    sessions = session_factory(engine)
    router = APIRouter()

    @router.post("/people")
    async def add_person() -> dict[str, str]:
        async with sessions() as session, session.begin():
            await session.execute(
                sa.text("INSERT INTO person VALUES (:phone, :name)"),
                {"phone": PHONE, "name": NAME},
            )
        return {"status": "added"}

    app = create_app(service="pii-test", title="t", version="1", routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.INFO):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/people")
    await engine.dispose()

    assert response.status_code == 500
    logged = [
        formatter.format(record)
        for record in caplog.records
        for formatter in (_JsonFormatter("pii-test"), _TextFormatter("pii-test"))
    ]
    assert any("IntegrityError" in line for line in logged)  # the failure is still reported
    traced = [str(event.attributes) for span in spans.get_finished_spans() for event in span.events]
    assert any("IntegrityError" in text for text in traced)
    server_log = infra.postgres.log_path.read_text(errors="replace") if infra.postgres else ""
    for value in (PHONE, PHONE[1:], NAME):
        assert value not in response.text
        assert not [line for line in logged if value in line], value
        assert not [text for text in traced if value in text], value
        assert value not in server_log

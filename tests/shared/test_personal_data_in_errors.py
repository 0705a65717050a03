"""A failing write leaves none of its values in logs, spans, error texts or the server log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.consumer import EventConsumer, RetryPolicy
from shared.db import create_engine, session_factory
from shared.events.catalog import Catalog
from shared.events.envelope import Envelope
from shared.events.registration import HouseholdErased
from shared.http import create_app
from shared.kafka import LazyProducer, ensure_topics
from shared.telemetry import _JsonFormatter, _TextFormatter, setup_tracing
from tests.support import migrated_database, read_topic_to_end, unique
from tests.support.topics import throwaway_topic

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


async def test_a_failing_write_in_a_consumer_leaks_no_value_into_dead_letters(
    infra: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler whose write violates a unique phone: retried, dead-lettered, and the
    dead letter's headers, the logs and their tracebacks name the error, not the phone."""
    bootstrap = infra.kafka_bootstrap
    topic = throwaway_topic("haven.test.pii-dlq", (HouseholdErased,))
    await ensure_topics(bootstrap, Catalog([topic]))
    engine = create_engine(await migrated_database(infra, "distribution"))  # inbox, outbox
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE person (phone text UNIQUE, name text)"))
        await conn.execute(
            sa.text("INSERT INTO person VALUES (:phone, :name)"), {"phone": PHONE, "name": NAME}
        )
    events = EventConsumer(
        service=unique("piidlq"),
        sessions=session_factory(engine),
        dead_letters=LazyProducer(bootstrap, client_id="pii-dlq-test"),
        retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
        catalog=Catalog([topic]),
    )

    @events.on(HouseholdErased)
    async def remember(session: Any, envelope: Envelope[HouseholdErased]) -> None:
        await session.execute(
            sa.text("INSERT INTO person VALUES (:phone, :name)"), {"phone": PHONE, "name": NAME}
        )

    erased = Envelope.wrap(
        HouseholdErased(household_id=uuid.uuid4(), site_id="S"), source="haven/registration"
    )
    key = str(erased.data.household_id).encode()
    record = ConsumerRecord(
        topic=topic.name,
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=erased.kafka_value(),
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=0,
        headers=erased.kafka_headers(),
    )
    with caplog.at_level(logging.INFO):
        outcome = await events.process(topic, record)
    await events.dead_letters.stop()
    await engine.dispose()

    assert outcome == "dead_lettered"
    (dead,) = await read_topic_to_end(bootstrap, topic.dlq)
    headers = {name: value.decode(errors="replace") for name, value in dead.headers}
    assert "IntegrityError" in headers["haven_dlq_reason"]
    logged = [_JsonFormatter("pii-test").format(record) for record in caplog.records]
    for value in (PHONE, PHONE[1:], NAME):
        assert not [h for h in headers.values() if value in h], value
        assert not [line for line in logged if value in line], value

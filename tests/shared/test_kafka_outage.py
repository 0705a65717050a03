"""Kafka stopped for 30 s while a service keeps accepting writes: nothing is lost, and the
backlog drains when Kafka returns."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import sqlalchemy as sa

from services.registration.service import DEFINITION
from shared.events.catalog import HOUSEHOLDS
from shared.events.envelope import headers_to_dict
from shared.events.registration import HouseholdErased
from shared.outbox import add_event
from shared.service import ServiceRuntime
from shared.settings import ServiceSettings, load_settings
from tests.support import create_catalog_topics, eventually, migrated_database, read_topic_to_end

OUTAGE_SECONDS = 30


@pytest.mark.slow
async def test_writes_during_a_kafka_outage_are_relayed_when_it_returns(infra, monkeypatch) -> None:
    if infra.kafka is None:
        pytest.skip("Kafka is not ours to stop here (external or container endpoints)")
    bootstrap = infra.kafka_bootstrap
    await create_catalog_topics(bootstrap)
    url = await migrated_database(infra, "registration")
    monkeypatch.setenv("HAVEN_KAFKA_BOOTSTRAP", bootstrap)
    monkeypatch.setenv("HAVEN_REGISTRATION_DATABASE_URL", url)
    settings = load_settings("registration", ServiceSettings)
    settings.relay_poll_seconds = 0.2
    runtime = ServiceRuntime(DEFINITION, settings)
    await runtime.start()
    written: list[uuid.UUID] = []

    async def write(n: int) -> None:
        for _ in range(n):
            household = uuid.uuid4()
            async with runtime.sessions() as session, session.begin():
                await add_event(
                    session,
                    HouseholdErased(household_id=household, site_id="S"),
                    key=str(household),
                    source="haven/registration",
                )
            written.append(household)

    try:
        await write(20)
        infra.kafka.stop()
        started = time.monotonic()
        while time.monotonic() - started < OUTAGE_SECONDS:
            await write(10)  # the service keeps accepting writes
            await asyncio.sleep(1)
        async with runtime.engine.connect() as conn:
            backlog = await conn.scalar(sa.text("SELECT count(*) FROM outbox"))
        assert backlog and backlog >= 250, "writes during the outage wait in the outbox"
        infra.kafka.start()
        infra.kafka.wait_ready(timeout=60)

        async def drained() -> bool:
            async with runtime.engine.connect() as conn:
                return await conn.scalar(sa.text("SELECT count(*) FROM outbox")) == 0

        await eventually(drained, timeout=90, what="the outbox backlog to drain")
    finally:
        await runtime.stop()

    records = await read_topic_to_end(bootstrap, HOUSEHOLDS.name)
    seen = {
        HouseholdErased.model_validate_json(r.value).household_id
        for r in records
        if r.value and headers_to_dict(r.headers).get("ce_type") == "HouseholdErased"
    }
    missing = [h for h in written if h not in seen]
    assert not missing, f"{len(missing)} of {len(written)} events lost"

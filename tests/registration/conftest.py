"""The registration service running in-process against the real PostgreSQL and Kafka.

Each test module gets its own database (so duplicate checks see only that module's people),
the app with its whole runtime (migrations, outbox relay), a controllable clock, tokens per
role, and a recorder of the registration topics that starts at their current end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.registration.service import DEFINITION
from services.registration.settings import RegistrationSettings
from shared.db import create_engine
from shared.events.catalog import AUDIT, CONTACTS, HOUSEHOLDS
from shared.service import build_app
from shared.settings import load_settings
from tests.registration.support import SITES, Service
from tests.support import create_catalog_topics, unique
from tests.support.apps import serving
from tests.support.clock import FakeClock
from tests.support.topics import TopicReader


@pytest.fixture(scope="module")
async def service(infra: Any) -> AsyncIterator[Service]:
    """The registration service with its own database and the demo sites."""
    bootstrap = infra.kafka_bootstrap
    await create_catalog_topics(bootstrap)
    database_url = infra.postgres_url(unique("t_registration"))
    recorder = await TopicReader(bootstrap, HOUSEHOLDS, CONTACTS, AUDIT).open()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HAVEN_REGISTRATION_DATABASE_URL", database_url)
        env.setenv("HAVEN_KAFKA_BOOTSTRAP", bootstrap)
        env.setenv("HAVEN_REGISTRATION_RELAY_POLL_SECONDS", "0.2")
        settings = load_settings("registration", RegistrationSettings)
    clock = FakeClock()
    app = build_app(DEFINITION, settings, clock=clock)
    engine = create_engine(database_url, pool_size=2)
    try:
        async with serving(app, base_url="http://registration") as client:
            running = Service(client, engine, clock, recorder, database_url)
            for site in SITES:
                response = await client.post("/v1/sites", json=site, headers=running.admin)
                assert response.status_code == 201, response.text
            yield running
    finally:
        await recorder.close()
        await engine.dispose()

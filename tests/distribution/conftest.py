"""Fixtures of the distribution tests: one service for the package (its own database, the real
broker), a controlled clock reset for every test, readers of the service's two topics, and a
fresh site with a warehouse for each test (so tests never share data)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from shared.events.catalog import AUDIT, DISTRIBUTIONS, STOCK
from tests.distribution.support import (
    START,
    Service,
    Site,
    make_site,
    running_service,
    settings_for,
)
from tests.support import create_catalog_topics, migrated_database
from tests.support.clock import FakeClock
from tests.support.topics import TopicReader


@pytest.fixture(scope="package")
async def service(infra: Any) -> AsyncIterator[Service]:
    await create_catalog_topics(infra.kafka_bootstrap)
    url = await migrated_database(infra, "distribution")
    async with running_service(settings_for(infra, url), clock=FakeClock(START)) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "service" in request.fixturenames:
        request.getfixturevalue("service").clock.set(START)


@pytest.fixture(scope="package")
async def distributions_topic(infra: Any, service: Service) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(infra.kafka_bootstrap, DISTRIBUTIONS.name).open()
    yield reader
    await reader.close()


@pytest.fixture(scope="package")
async def stock_topic(infra: Any, service: Service) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(infra.kafka_bootstrap, STOCK.name).open()
    yield reader
    await reader.close()


@pytest.fixture(scope="package")
async def audit_topic(infra: Any, service: Service) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(infra.kafka_bootstrap, AUDIT.name).open()
    yield reader
    await reader.close()


@pytest.fixture
async def site(service: Service) -> Site:
    return await make_site(service)

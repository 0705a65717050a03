"""Fixtures of the notifications tests: a fresh migrated database per test (cloned from one
migrated template, which also proves the migrations apply on an empty database), settings,
a controlled clock, a consumer wired to the service's handlers, a sender."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications import handlers
from services.notifications.channels.base import ChannelTransport
from services.notifications.jobs import Sender
from services.notifications.settings import Channel, NotificationsSettings
from shared.consumer import EventConsumer, RetryPolicy
from shared.db import SessionFactory, create_engine, session_factory
from shared.kafka import LazyProducer
from tests.notifications.support import MORNING, HandlerRuntime, clone, drop, make_settings
from tests.support import migrated_database, unique
from tests.support.clock import FakeClock


@pytest.fixture(scope="session")
async def template_database(infra: Any) -> AsyncIterator[str]:
    """The notifications schema migrated once on an empty database."""
    url = await migrated_database(infra, "notifications", unique("t_notif_template"))
    yield url
    await drop(url)


@pytest.fixture
async def database_url(template_database: str) -> AsyncIterator[str]:
    """A fresh copy of the migrated schema for one test (CREATE DATABASE ... TEMPLATE)."""
    url = await clone(template_database)
    yield url
    await drop(url)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MORNING)


@pytest.fixture
def settings_for(database_url: str, infra: Any) -> Callable[..., NotificationsSettings]:
    def build(**overrides: Any) -> NotificationsSettings:
        return make_settings(database_url, infra.kafka_bootstrap, **overrides)

    return build


@pytest.fixture
def settings(settings_for: Callable[..., NotificationsSettings]) -> NotificationsSettings:
    return settings_for()


@pytest.fixture
async def consumer(
    sessions: SessionFactory, settings: NotificationsSettings, clock: FakeClock, infra: Any
) -> AsyncIterator[EventConsumer]:
    """The service's handlers on an EventConsumer, driven record by record with process()."""
    dead_letters = LazyProducer(infra.kafka_bootstrap, client_id=unique("notif-test"))
    events = EventConsumer(
        service=unique("notifications"),
        sessions=sessions,
        dead_letters=dead_letters,
        retry=RetryPolicy(max_attempts=1, initial_backoff_seconds=0.01),
    )
    handlers.register(events, HandlerRuntime(settings, clock))
    yield events
    await dead_letters.stop()


@pytest.fixture
def sender_for(
    engine: AsyncEngine, sessions: SessionFactory, clock: FakeClock
) -> Callable[..., Sender]:
    def build(
        settings: NotificationsSettings, transports: dict[Channel, ChannelTransport]
    ) -> Sender:
        return Sender(
            engine=engine,
            sessions=sessions,
            settings=settings,
            transports=transports,
            clock=clock,
            rng=random.Random(7),
        )

    return build

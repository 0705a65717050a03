"""The registration service running in-process against the real PostgreSQL and Kafka.

Each test module gets its own database (so duplicate checks see only that module's people),
the app with its whole runtime (migrations, outbox relay), a controllable clock, tokens per
role, and a recorder of the registration topics that starts at their current end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registration.service import DEFINITION
from services.registration.settings import RegistrationSettings
from shared.auth import AuthSettings, Role, issue_dev_token
from shared.db import create_engine
from shared.events.catalog import AUDIT, CONTACTS, HOUSEHOLDS, Topic
from shared.events.envelope import headers_to_dict
from shared.service import build_app
from shared.settings import load_settings
from tests.support import create_catalog_topics, unique

SITES = (
    {
        "id": "MDA-CHI",
        "name": "Chișinău collective centre",
        "country": "MDA",
        "admin1": "MD01",
        "admin2": "MD0101",
        "timezone": "Europe/Chisinau",
    },
    {
        "id": "MDA-PAL",
        "name": "Palanca border crossing",
        "country": "MDA",
        "admin1": "MD34",
        "admin2": "MD3401",
        "timezone": "Europe/Chisinau",
    },
)


class FakeClock:
    """The service's clock in tests: fixed, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Record:
    topic: str
    partition: int
    key: str | None
    headers: dict[str, str]
    value: bytes | None

    @property
    def type(self) -> str | None:
        return self.headers.get("ce_type")

    @property
    def data(self) -> dict[str, Any]:
        assert self.value is not None, "a tombstone has no data"
        loaded: dict[str, Any] = json.loads(self.value)
        return loaded


@dataclass
class TopicRecorder:
    """Collects what arrives on some topics from the moment it started."""

    bootstrap: str
    topics: Sequence[Topic]
    records: list[Record] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in self.topics
            for partition in range(topic.partitions)
        ]
        consumer.assign(partitions)
        for partition, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(partition, offset)
        self._consumer = consumer
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    self.records.append(
                        Record(
                            topic=r.topic,
                            partition=r.partition,
                            key=r.key.decode() if r.key is not None else None,
                            headers=headers_to_dict(r.headers or ()),
                            value=r.value,
                        )
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def matching(self, predicate: Callable[[Record], bool]) -> list[Record]:
        return [r for r in self.records if predicate(r)]

    async def wait_for(
        self, predicate: Callable[[Record], bool], *, count: int = 1, timeout: float = 30.0
    ) -> list[Record]:
        """The records matching ``predicate`` once at least ``count`` of them arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} records, got {len(found)}: {found}")
            await asyncio.sleep(0.1)

    async def for_household(
        self, household_id: str, *, count: int = 1, topic: str = HOUSEHOLDS.name
    ) -> list[Record]:
        return await self.wait_for(
            lambda r: r.topic == topic and r.key == household_id, count=count
        )


@dataclass
class Service:
    """A running registration service and everything a test needs to talk to it."""

    client: httpx.AsyncClient
    engine: AsyncEngine
    clock: FakeClock
    topics: TopicRecorder
    database_url: str

    def headers(
        self,
        role: Role | str,
        *,
        sites: Sequence[str] = ("MDA-CHI",),
        sub: str | None = None,
    ) -> dict[str, str]:
        token = issue_dev_token(
            AuthSettings(), sub=sub or f"{role}-tester", roles=[role], sites=list(sites)
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.headers(Role.ADMIN, sites=())

    @property
    def field(self) -> dict[str, str]:
        return self.headers(Role.FIELD_STAFF)

    async def register(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/households", json=body, headers=headers or self.field
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, household_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(
            f"/v1/households/{household_id}", headers=headers or self.admin
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())

    async def audit_actions(self, household_id: str) -> list[str]:
        """Audit records of a household, read from the audit topic."""
        records = self.topics.matching(
            lambda r: (
                r.topic == AUDIT.name
                and r.value is not None
                and r.data.get("service") == "registration"
                and r.data.get("resource_id") == household_id
            )
        )
        return [r.data["action"] for r in records]


@pytest.fixture(scope="module")
async def service(infra: Any) -> AsyncIterator[Service]:
    """The registration service with its own database and the demo sites."""
    bootstrap = infra.kafka_bootstrap
    await create_catalog_topics(bootstrap)
    database_url = infra.postgres_url(unique("t_registration"))
    recorder = TopicRecorder(bootstrap, [HOUSEHOLDS, CONTACTS, AUDIT])
    await recorder.start()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HAVEN_REGISTRATION_DATABASE_URL", database_url)
        env.setenv("HAVEN_KAFKA_BOOTSTRAP", bootstrap)
        env.setenv("HAVEN_REGISTRATION_RELAY_POLL_SECONDS", "0.2")
        settings = load_settings("registration", RegistrationSettings)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    app = build_app(DEFINITION, settings, clock=clock)
    engine = create_engine(database_url, pool_size=2)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://registration"
            ) as client,
        ):
            running = Service(client, engine, clock, recorder, database_url)
            for site in SITES:
                response = await client.post("/v1/sites", json=site, headers=running.admin)
                assert response.status_code == 201, response.text
            yield running
    finally:
        await recorder.stop()
        await engine.dispose()

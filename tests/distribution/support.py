"""Helpers of the distribution tests: a running service, tokens, households, topic readers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI

from services.distribution.service import DEFINITION
from services.distribution.settings import DistributionSettings
from shared.auth import AuthSettings, Role, issue_dev_token
from shared.events.catalog import CATALOG, HOUSEHOLDS
from shared.events.envelope import Envelope, EventPayload, headers_to_dict
from shared.events.registration import (
    ConsentFlags,
    HouseholdRegistered,
    Location,
    MemberProfile,
    Need,
)
from shared.service import ServiceRuntime, build_app
from shared.settings import CommonSettings
from shared.vocabulary import AgeBand, DisplacementStatus, HouseholdStatus, NeedType, Sex

START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
"""The tests' default 'now' (a Monday morning in the programme)."""


class FakeClock:
    """A clock the tests move by hand; never sleeps."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    @property
    def today(self) -> date:
        return self.now.date()


def token(roles: Sequence[Role | str], sites: Sequence[str] = (), sub: str | None = None) -> str:
    return issue_dev_token(
        AuthSettings(), sub=sub or f"user-{uuid.uuid4().hex[:6]}", roles=roles, sites=sites
    )


def bearer(roles: Sequence[Role | str], sites: Sequence[str] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(roles, sites)}"}


def new_site() -> str:
    return f"T-{uuid.uuid4().hex[:8].upper()}"


def profile(
    *,
    site_id: str,
    size: int = 3,
    needs: Sequence[NeedType] = (NeedType.FOOD, NeedType.HYGIENE),
    version: int = 1,
    status: HouseholdStatus = HouseholdStatus.ACTIVE,
    household_id: uuid.UUID | None = None,
    event: type[HouseholdRegistered] = HouseholdRegistered,
) -> HouseholdRegistered:
    """A household profile as registration publishes it."""
    members = tuple(
        MemberProfile(
            member_id=uuid.uuid4(),
            sex=Sex.FEMALE if i % 2 == 0 else Sex.MALE,
            age_band=AgeBand.AGE_18_59 if i < 2 else AgeBand.AGE_5_17,
            is_head=i == 0,
        )
        for i in range(size)
    )
    return event(
        household_id=household_id or uuid.uuid4(),
        case_number="MDA-TST-000001",
        site_id=site_id,
        location=Location(admin1="MD01"),
        displacement_status=DisplacementStatus.REFUGEE,
        status=status,
        household_size=size,
        members=members,
        needs=tuple(Need(type=n) for n in needs),
        preferred_language="uk",
        consent=ConsentFlags(data_processing=True, referral_sharing=False, contact=False),
        version=version,
    )


def envelope_of(payload: EventPayload) -> Envelope[Any]:
    return Envelope.wrap(payload, source="haven/registration", actor="test")


async def publish(bootstrap: str, *payloads: EventPayload, key: str) -> None:
    """Publish events the way registration's relay does (CloudEvents binary binding)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for payload in payloads:
            envelope = envelope_of(payload)
            await producer.send_and_wait(
                CATALOG.topic_for(payload).name,
                value=envelope.kafka_value(),
                key=key.encode(),
                headers=envelope.kafka_headers(),
            )
    finally:
        await producer.stop()


async def start_group_at_end(bootstrap: str, group_id: str, topic: str) -> None:
    """Commit the group's offsets at the topic's end, so a fresh test consumer skips the
    history other tests left on the shared broker."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(CATALOG.topic(topic).partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


@dataclass
class Received:
    type: str
    key: str | None
    data: dict[str, Any]
    headers: dict[str, str]


@dataclass
class TopicReader:
    """Reads a topic from the moment it was opened; records are kept for every later wait."""

    bootstrap: str
    topic: str
    records: list[Received] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def open(self) -> TopicReader:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        count = CATALOG.topic(self.topic).partitions
        partitions = [TopicPartition(self.topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before the test produces
            await consumer.position(tp)
        self._consumer = consumer
        return self

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for(
        self, match: Callable[[Received], bool], *, count: int = 1, timeout: float = 30.0
    ) -> list[Received]:
        """The matching records once ``count`` arrived; fails after ``timeout`` seconds."""
        assert self._consumer is not None
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.records if match(r)]
            if len(found) >= count or time.monotonic() > deadline:
                break
            batch = await self._consumer.getmany(timeout_ms=200)
            for part in batch.values():
                for record in part:
                    headers = headers_to_dict(record.headers or ())
                    self.records.append(
                        Received(
                            type=headers.get("ce_type", ""),
                            key=record.key.decode() if record.key else None,
                            data=json.loads(record.value) if record.value else {},
                            headers=headers,
                        )
                    )
        assert len(found) >= count, f"{len(found)} of {count} records on {self.topic}"
        return found

    async def settle(self, seconds: float = 1.5) -> None:
        """Read whatever arrives during ``seconds`` (to check that something did NOT come)."""
        assert self._consumer is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.wait_for(lambda r: True, count=0, timeout=0)
            await asyncio.sleep(0.1)


def settings_for(
    infra: Any, database_url: str, *, policy_dir: Path | None = None, **overrides: Any
) -> DistributionSettings:
    values: dict[str, Any] = {
        "service": "distribution",
        "database_url": database_url,
        "relay_poll_seconds": 0.2,
        "consumers_enabled": False,
        "db_pool_size": 15,
        "common": CommonSettings(kafka_bootstrap=infra.kafka_bootstrap),
    }
    if policy_dir is not None:
        values["policy_dir"] = policy_dir
    values.update(overrides)
    return DistributionSettings(**values)


@dataclass
class Service:
    """A distribution service running in-process with its whole runtime."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    settings: DistributionSettings

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime


@asynccontextmanager
async def running_service(
    settings: DistributionSettings,
    *,
    clock: FakeClock,
    name: str = "distribution",
    background: Sequence[Any] = (),
) -> AsyncIterator[Service]:
    """The app with its lifespan (migrations, relay, consumers, policy) and an HTTP client.

    ``name`` names the consumer group (``haven-<name>``): tests that consume use their own.
    """
    definition = dataclasses.replace(DEFINITION, name=name, jobs=tuple(background))
    app = build_app(definition, settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://distribution") as client:
            yield Service(app=app, client=client, clock=clock, settings=settings)


async def insert_household(service: Service, payload: HouseholdRegistered) -> None:
    """Put a household in the read model through the service's own handler."""
    from services.distribution.domain import households

    async with service.runtime.sessions() as session, session.begin():
        await households.apply_profile(session=session, profile=payload, at=service.clock())


__all__ = [
    "HOUSEHOLDS",
    "START",
    "FakeClock",
    "Received",
    "Service",
    "TopicReader",
    "bearer",
    "envelope_of",
    "insert_household",
    "new_site",
    "profile",
    "publish",
    "running_service",
    "settings_for",
    "start_group_at_end",
    "token",
]


async def ledger_mismatches(service: Service) -> list[Any]:
    """Balances that differ from the sum of their ledger entries (should be none)."""
    import sqlalchemy as sa

    async with service.runtime.engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                """
                SELECT b.warehouse_id, b.sku, b.batch, b.quantity,
                       coalesce(sum(l.quantity), 0) AS ledger
                FROM stock_balance b
                LEFT JOIN stock_ledger l
                  ON l.warehouse_id = b.warehouse_id AND l.sku = b.sku
                 AND l.batch IS NOT DISTINCT FROM b.batch
                GROUP BY b.id
                HAVING b.quantity <> coalesce(sum(l.quantity), 0) OR b.quantity < 0
                """
            )
        )
        return list(result.all())


async def eventually_true(
    check: Callable[[], Any], *, timeout: float = 20.0, what: str = ""
) -> None:
    """Poll ``check`` (an async predicate) until it holds; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

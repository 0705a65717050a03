"""Builders for the referral tests: households' events, providers, tokens, a clock, an app."""

from __future__ import annotations

import dataclasses
import itertools
import json
import types
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral import handlers
from services.referral.domain import households
from services.referral.domain.common import SYSTEM_ACTOR
from services.referral.models import ProviderCreate
from services.referral.service import DEFINITION
from services.referral.settings import ReferralSettings
from shared.auth import Role
from shared.consumer import EventConsumer
from shared.db import SessionFactory
from shared.events.catalog import HOUSEHOLDS
from shared.events.envelope import Envelope, EventPayload
from shared.events.registration import (
    ConsentFlags,
    HouseholdRegistered,
    HouseholdUpdated,
    Location,
    MemberProfile,
)
from shared.kafka import LazyProducer
from shared.service import build_app
from shared.settings import load_settings
from shared.vocabulary import (
    AgeBand,
    HouseholdStatus,
    NeedType,
    Priority,
    Sex,
    Vulnerability,
)
from tests.support import consumer_record, events, migrated_database, unique
from tests.support.apps import serving
from tests.support.clock import FakeClock
from tests.support.events import household_profile
from tests.support.tokens import auth_headers

SITE = "MDA-CHI"
OTHER_SITE = "MDA-OCN"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


# --- tokens --------------------------------------------------------------------------------


auth = partial(auth_headers, sites=(SITE,))
"""Headers of a user with these roles at the test site unless ``sites`` say otherwise."""


ADMIN = auth(Role.ADMIN, sites=())
CASEWORKER = auth(Role.CASEWORKER)
MANAGER = auth(Role.MANAGER)
FOCAL_POINT = auth(Role.PROTECTION_FOCAL_POINT)


def provider_auth(provider_id: uuid.UUID | str) -> dict[str, str]:
    return auth(Role.PROVIDER, sites=(), org=str(provider_id))


# --- households ----------------------------------------------------------------------------


def profile(
    household_id: uuid.UUID | None = None,
    *,
    needs: Sequence[tuple[NeedType, Priority] | NeedType] = (),
    vulnerabilities: Sequence[Vulnerability] = (),
    referral_sharing: bool = True,
    version: int = 1,
    admin1: str = "MD01",
    admin2: str | None = "MD0101",
    language: str = "uk",
    site_id: str = SITE,
    status: HouseholdStatus = HouseholdStatus.ACTIVE,
    event: type[HouseholdRegistered] | type[HouseholdUpdated] = HouseholdRegistered,
) -> Any:
    household_id = household_id or uuid.uuid4()
    head = MemberProfile(
        member_id=uuid.uuid5(household_id, "head"),
        sex=Sex.FEMALE,
        age_band=AgeBand.AGE_18_59,
        is_head=True,
        vulnerabilities=tuple(vulnerabilities),
    )
    return household_profile(
        household_id,
        event=event,
        site_id=site_id,
        case_number=f"{site_id}-{household_id.hex[:6]}",
        size=3,
        members=(head,),
        needs=needs,
        status=status,
        location=Location(admin1=admin1, admin2=admin2),
        language=language,
        consent=ConsentFlags(data_processing=True, referral_sharing=referral_sharing, contact=True),
        version=version,
    )


def envelope(payload: EventPayload) -> Envelope[Any]:
    return events.envelope(payload, source="haven/registration", actor="registrar-1")


def record(env: Envelope[Any], key: str | None = None) -> ConsumerRecord[bytes, bytes]:
    """The Kafka record a consumer would receive for ``env``."""
    raw_key = key or str(getattr(env.data, "household_id", "k"))
    return consumer_record(env, topic=HOUSEHOLDS.name, key=raw_key)


# --- providers -----------------------------------------------------------------------------


def provider_body(
    *,
    name: str | None = None,
    services: Sequence[str] = ("medical",),
    regions: Sequence[str] = ("MD01",),
    languages: Sequence[str] = ("ro", "ru", "uk"),
    capacity: int = 10,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name or unique("Clinic"),
        "services": list(services),
        "regions": list(regions),
        "languages": list(languages),
        "capacity": capacity,
        "contact": {
            "phone": "+373 22 123 456",
            "email": "intake@clinic.example.org",
            "website": "https://clinic.example.org",
            "address": {
                "address_1": "Strada Ismail 12",
                "city": "Chișinău",
                "postal_code": "MD-2001",
                "country": "MD",
            },
        },
        "opening_hours": "Mon-Fri 09:00-17:00",
        **extra,
    }


def referral_consumer(
    bootstrap: str, url: str, sessions: SessionFactory, clock: FakeClock, *, client_id: str
) -> EventConsumer:
    """An event consumer with referral's handlers, its settings read for the database at
    ``url``; the caller stops its dead-letter producer."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HAVEN_REFERRAL_DATABASE_URL", url)
        settings = load_settings("referral", ReferralSettings)
    events = EventConsumer(
        service=unique("referral"),
        sessions=sessions,
        dead_letters=LazyProducer(bootstrap, client_id=client_id),
    )
    handlers.register(events, handler_runtime(settings, clock))
    return events


def handler_runtime(settings: ReferralSettings, clock: FakeClock) -> Any:
    """What referral's handlers read from the service runtime: its settings and clock."""
    return types.SimpleNamespace(settings=settings, clock=clock)


async def add_provider(sessions: SessionFactory, now: datetime = START, **fields: Any) -> uuid.UUID:
    """A provider written through the domain (for tests that do not go through HTTP)."""
    from services.referral.domain import providers

    data = ProviderCreate.model_validate(provider_body(**fields))
    async with sessions() as session, session.begin():
        provider = await providers.create(session=session, data=data, actor=SYSTEM_ACTOR, now=now)
    return provider.id


# --- events staged in the outbox -----------------------------------------------------------


@dataclass(frozen=True)
class Staged:
    topic: str
    type: str
    key: str | None
    headers: dict[str, str]
    data: dict[str, Any]


async def staged(
    engine: AsyncEngine, *, topic: str | None = None, key: str | None = None
) -> list[Staged]:
    """Events waiting in the outbox (the relay is off in these tests), oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT topic, key, headers, value FROM outbox ORDER BY id")
        )
        result = []
        for topic_name, row_key, headers, value in rows.all():
            header_map = {name: val for name, val in headers}
            event = Staged(
                topic=topic_name,
                type=header_map.get("ce_type", ""),
                key=row_key,
                headers=header_map,
                data=json.loads(value) if value else {},
            )
            if (topic is None or event.topic == topic) and (key is None or event.key == key):
                result.append(event)
        return result


async def referral_events(engine: AsyncEngine, household_id: uuid.UUID) -> list[Staged]:
    return await staged(engine, topic="haven.referral.referrals.v1", key=str(household_id))


async def audit_records(
    engine: AsyncEngine, resource_id: str | None = None
) -> list[dict[str, Any]]:
    events = await staged(engine, topic="haven.audit.v1")
    return [
        e.data for e in events if resource_id is None or e.data.get("resource_id") == resource_id
    ]


# --- the app -------------------------------------------------------------------------------


@dataclass
class RunningApp:
    client: httpx.AsyncClient
    clock: FakeClock
    settings: ReferralSettings
    engine: AsyncEngine
    sessions: SessionFactory
    database_url: str
    name: str


@asynccontextmanager
async def running_app(
    infra: Any,
    *,
    consumers: bool = False,
    relay: bool = False,
    scheduler: bool = False,
    env: dict[str, str] | None = None,
    name: str | None = None,
) -> AsyncIterator[RunningApp]:
    """The referral app in-process with its whole runtime, on a fresh database."""
    url = await migrated_database(infra, "referral")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HAVEN_REFERRAL_DATABASE_URL", url)
        patch.setenv("HAVEN_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
        patch.setenv("HAVEN_REFERRAL_CONSUMERS_ENABLED", str(consumers).lower())
        patch.setenv("HAVEN_REFERRAL_RELAY_ENABLED", str(relay).lower())
        patch.setenv("HAVEN_REFERRAL_SCHEDULER_ENABLED", str(scheduler).lower())
        patch.setenv("HAVEN_REFERRAL_SCHEDULER_INTERVAL_SECONDS", "0.2")
        patch.setenv("HAVEN_REFERRAL_CONSUMER_BACKOFF_INITIAL_SECONDS", "0.05")
        patch.setenv("HAVEN_REFERRAL_RELAY_POLL_SECONDS", "0.2")
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        settings = load_settings("referral", ReferralSettings)
    clock = FakeClock(START)
    name = name or unique("referral")  # its own consumer group on the shared broker
    app = build_app(dataclasses.replace(DEFINITION, name=name), settings, clock=clock)
    async with serving(app, base_url="http://referral.test") as client:
        runtime = app.state.runtime
        yield RunningApp(
            client=client,
            clock=clock,
            settings=settings,
            engine=runtime.engine,
            sessions=runtime.sessions,
            database_url=url,
            name=name,
        )


# --- through the app: households, providers, referrals -----------------------------------

_areas = itertools.count(1)


def area() -> tuple[str, str]:
    """A fresh (admin1, admin2) so each test routes among its own providers only."""
    n = next(_areas) + uuid.uuid4().int % 10**4 * 100
    return f"MD{n:06d}", f"MD{n:06d}01"


async def known_household(app: RunningApp, **fields: Any) -> uuid.UUID:
    """A household as registration's events would leave it here."""
    event = profile(**fields)
    async with app.sessions() as session, session.begin():
        await households.apply_profile(
            session=session,
            profile=event,
            actor=SYSTEM_ACTOR,
            at=app.clock(),
            settings=app.settings,
        )
    return event.household_id


async def new_provider(app: RunningApp, **fields: Any) -> str:
    response = await app.client.post("/v1/providers", json=provider_body(**fields), headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def refer(
    app: RunningApp,
    household_id: uuid.UUID,
    service_type: str = "medical",
    headers: dict[str, str] = CASEWORKER,
    **fields: Any,
) -> Any:
    body = {
        "household_id": str(household_id),
        "service_type": service_type,
        "urgency": "normal",
        "reason": "Needs follow-up of a chronic condition",
        **fields,
    }
    return await app.client.post("/v1/referrals", json=body, headers=headers)


async def act(
    app: RunningApp, referral_id: str, action: str, headers: dict[str, str], body: Any = None
) -> Any:
    return await app.client.post(
        f"/v1/referrals/{referral_id}/{action}", json=body, headers=headers
    )

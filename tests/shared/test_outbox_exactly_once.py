"""10,000 events through a service's outbox while the relay is SIGKILLed and restarted twice:
a consumer in another process applies each exactly once, in order per key."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.db import create_engine, session_factory
from shared.events.registration import ConsentFlags, HouseholdUpdated, Location, MemberProfile
from shared.kafka import ensure_topics
from shared.outbox import add_event
from shared.vocabulary import AgeBand, DisplacementStatus, HouseholdStatus, Sex
from tests.shared.workers import private_catalog
from tests.support import (
    eventually,
    kill_group,
    migrated_database,
    start_python,
    unique,
)

HOUSEHOLDS = 100
VERSIONS = 100  # 10,000 events
TOTAL = HOUSEHOLDS * VERSIONS


def update(household_id: uuid.UUID, version: int) -> HouseholdUpdated:
    head = MemberProfile(
        member_id=household_id, sex=Sex.MALE, age_band=AgeBand.AGE_18_59, is_head=True
    )
    return HouseholdUpdated(
        household_id=household_id,
        case_number="TST-000001",
        site_id="TST",
        location=Location(admin1="T1"),
        displacement_status=DisplacementStatus.IDP,
        status=HouseholdStatus.ACTIVE,
        household_size=1,
        members=(head,),
        preferred_language="ro",
        consent=ConsentFlags(data_processing=True, referral_sharing=False, contact=False),
        version=version,
    )


@pytest.mark.slow
async def test_relay_killed_twice_delivers_each_event_once_in_order(infra, tmp_path: Path) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = unique("haven.test.sequence")
    catalog = private_catalog(topic)
    await ensure_topics(bootstrap, catalog)
    source_url = await migrated_database(infra, "registration")
    sink_url = await migrated_database(infra, "distribution", unique("t_sink"))
    source = create_engine(source_url)
    sink = create_engine(sink_url)
    sessions = session_factory(source)
    households = [uuid.uuid4() for _ in range(HOUSEHOLDS)]

    consumer = start_python(
        "tests.shared.workers",
        "consumer",
        sink_url,
        bootstrap,
        topic,
        log=tmp_path / "consumer.log",
    )
    relay = start_python(
        "tests.shared.workers",
        "relay",
        source_url,
        bootstrap,
        topic,
        log=tmp_path / "relay.log",
    )
    try:

        async def applied() -> int:
            async with sink.connect() as conn:
                exists = await conn.scalar(
                    sa.text("SELECT to_regclass('applications') IS NOT NULL")
                )
                return (
                    int(await conn.scalar(sa.text("SELECT count(*) FROM applications")) or 0)
                    if exists
                    else 0
                )

        kills = 0
        for version in range(1, VERSIONS + 1):
            # One transaction per version round, like a busy service: 100 households per commit.
            async with sessions() as session, session.begin():
                for household in households:
                    await add_event(
                        session,
                        update(household, version),
                        key=str(household),
                        source="haven/registration",
                        catalog=catalog,
                    )
            if version in (30, 65):
                # Kill the relay mid-stream: once it has delivered more since the last kill.
                before = await applied()

                async def progressed(before: int = before) -> bool:
                    return await applied() > before

                await eventually(progressed, timeout=60, what="the relay to deliver")
                kill_group(relay, signal.SIGKILL)
                kills += 1
                await asyncio.sleep(0.5)
                relay = start_python(
                    "tests.shared.workers",
                    "relay",
                    source_url,
                    bootstrap,
                    topic,
                    log=tmp_path / "relay.log",
                )
        assert kills == 2

        async def all_applied() -> bool:
            return await applied() >= TOTAL

        await eventually(all_applied, timeout=180, interval=1, what="all 10,000 events applied")
        await asyncio.sleep(2)  # let any late duplicate arrive before counting
        async with sink.connect() as conn:
            count = await conn.scalar(sa.text("SELECT count(*) FROM applications"))
            distinct = await conn.scalar(
                sa.text("SELECT count(DISTINCT event_id) FROM applications")
            )
            violations = await conn.scalar(sa.text("SELECT count(*) FROM order_violations"))
            per_key = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM (SELECT household_id, "
                        "array_agg(version ORDER BY id) AS v FROM applications "
                        "GROUP BY household_id) s "
                        "WHERE v = (SELECT array_agg(g) FROM generate_series(1, :n) g)"
                    ),
                    {"n": VERSIONS},
                )
            ).scalar()
        async with source.connect() as conn:
            left = await conn.scalar(sa.text("SELECT count(*) FROM outbox"))
        assert count == TOTAL, f"applied {count} times for {TOTAL} events"
        assert distinct == TOTAL
        assert violations == 0
        assert per_key == HOUSEHOLDS  # every household saw versions 1..100 in order
        assert left == 0
    finally:
        kill_group(relay, signal.SIGTERM)
        kill_group(consumer, signal.SIGTERM)
        await source.dispose()
        await sink.dispose()

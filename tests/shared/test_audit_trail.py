"""Audit records leave through the outbox, chained by the relay; `haven audit verify` checks
the chain on the topic and reports a forged record."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from haven.audit import read_audit_records, verify_topic
from shared.audit import Outcome, record
from shared.auth import Principal, Role
from shared.db import create_engine, session_factory
from shared.events.audit import AuditEvent
from shared.events.catalog import Catalog, Topic
from shared.kafka import LazyProducer, ensure_topics
from shared.outbox import OutboxRelay
from tests.support import ROOT, migrated_database, unique


async def test_audit_records_are_chained_on_publication_and_forgery_is_detected(infra) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = unique("haven.test.audit")
    catalog = Catalog(
        [
            Topic(
                name=topic,
                description="test audit",
                key="service",
                partitions=2,
                producers=("registration",),
                consumers=(),
                events=(AuditEvent,),
            )
        ]
    )
    await ensure_topics(bootstrap, catalog)
    url = await migrated_database(infra, "registration")
    engine = create_engine(url)
    sessions = session_factory(engine)
    clerk = Principal(sub="u-17", roles=frozenset({Role.FIELD_STAFF}), sites=frozenset({"S"}))

    for i in range(7):
        async with sessions() as session, session.begin():
            event = await record(
                session,
                service="registration",
                principal=clerk,
                action="household.update",
                resource_type="household",
                resource_id=f"h-{i}",
                outcome=Outcome.SUCCESS,
            )
            assert event.sequence is None  # the relay links it when it publishes
    # the rows went to the default audit topic; point them at this test's private topic
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE outbox SET topic = :t"), {"t": topic})
    producer = LazyProducer(bootstrap, client_id="audit-test")
    relay = OutboxRelay(engine, producer, service="registration", audit_topic=topic)
    assert await relay.drain_once() == 7
    async with sessions() as session, session.begin():
        await record(
            session, service="registration", principal=clerk, action="household.read",
            resource_type="household", resource_id="h-9",
        )  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE outbox SET topic = :t"), {"t": topic})
    assert await relay.drain_once() == 1  # a second round continues the same chain
    await producer.stop()
    await engine.dispose()

    records = await read_audit_records(bootstrap, topic)
    assert [r["sequence"] for r in sorted(records, key=lambda r: r["sequence"])] == list(
        range(1, 9)
    )
    assert all(r["actor_sub"] == "u-17" and r["actor_role"] == "field_staff" for r in records)
    count, breaks = await verify_topic(bootstrap, topic)
    assert (count, breaks) == (8, [])
    cli = [sys.executable, "-m", "haven.cli", "audit", "verify", "--topic", topic]
    env = {**os.environ, "HAVEN_KAFKA_BOOTSTRAP": bootstrap}
    intact = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert intact.returncode == 0, intact.stderr
    assert "8 record(s) verified" in intact.stderr

    # Someone rewrites who did record 3.
    forged = dict(sorted(records, key=lambda r: r["sequence"])[2], actor_sub="u-99")
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await kafka.start()
    await kafka.send_and_wait(topic, json.dumps(forged).encode(), key=b"registration")
    await kafka.stop()
    broken = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert "sequence=3" in broken.stderr

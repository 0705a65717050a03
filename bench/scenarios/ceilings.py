"""Scenario 6: the raw limits of Kafka and PostgreSQL on this machine, in the same run.

Kafka: the events registration publishes (same size and headers), produced with Haven's own
producer settings to a bench topic with the households topic's partition count, then read
back by a bare consumer — once as fast as it goes, once committing after every record as a
manual-ack subscriber does. PostgreSQL: see ``bench.pg_load``.
"""

from __future__ import annotations

import asyncio

from bench import kafka_load, pg_load
from bench.config import POOL_PER_SERVICE
from bench.context import RunContext
from bench.results_model import Ceiling, Row, ScenarioResult
from haven.stack import ROOT
from shared.db import migrate
from shared.events.catalog import HOUSEHOLDS

CEILING_TOPIC = "bench.ceiling.households"
CEILING_DATABASE = "bench_ceiling"
REGISTRATION_MIGRATIONS = ROOT / "services" / "registration" / "migrations"
EXPECTED_REGISTRATION_RATE = 3000.0  # rows prepared per second of the ceiling run


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult("ceilings", "Ceilings: raw Kafka and PostgreSQL on this machine")
    bootstrap = context.stack.kafka_bootstrap
    timeout = 300.0

    asyncio.run(kafka_load.create_topic(bootstrap, CEILING_TOPIC, HOUSEHOLDS.partitions))
    produced = context.loadgen(
        kafka_load.produce,
        bootstrap,
        CEILING_TOPIC,
        sizes.ceiling_events,
        seed=1,
        today=context.today,
        timeout=timeout,
    )
    consumed = context.loadgen(
        kafka_load.consume,
        bootstrap,
        CEILING_TOPIC,
        sizes.ceiling_events,
        max_seconds=60.0,
        commit_each=False,
        timeout=timeout,
    )
    committed = context.loadgen(
        kafka_load.consume,
        bootstrap,
        CEILING_TOPIC,
        sizes.ceiling_events,
        max_seconds=sizes.ceiling_seconds,
        commit_each=True,
        timeout=timeout,
    )

    database_url = context.stack.database_url(CEILING_DATABASE)
    asyncio.run(migrate(database_url, REGISTRATION_MIGRATIONS))
    dsn = context.stack.dsn(CEILING_DATABASE)
    asyncio.run(pg_load.prepare_registration_database(dsn))
    registrations = context.loadgen(
        pg_load.registration_shaped,
        dsn,
        workers=POOL_PER_SERVICE,
        seconds=sizes.ceiling_seconds,
        seed=context.next_seed(),
        today=context.today,
        expected_rate=EXPECTED_REGISTRATION_RATE,
        timeout=timeout,
    )
    hot_row = context.loadgen(
        pg_load.hot_row,
        dsn,
        workers=sizes.operators,
        pool_size=POOL_PER_SERVICE,
        seconds=sizes.ceiling_seconds,
        timeout=timeout,
    )
    sequential = context.loadgen(
        pg_load.sequential_commits, dsn, seconds=sizes.ceiling_seconds, timeout=timeout
    )

    ceilings = [
        Ceiling(
            "kafka_produce",
            "Kafka produce (aiokafka, Haven's producer settings)",
            produced.rate,
            "events/s",
            note=f"{produced.events} events, {produced.mean_value_bytes:.0f} B values",
        ),
        Ceiling("kafka_consume", "Kafka consume (aiokafka)", consumed.rate, "events/s"),
        Ceiling(
            "kafka_consume_commit_each",
            "Kafka consume, offset commit after every record",
            committed.rate,
            "events/s",
        ),
        Ceiling(
            "pg_registration",
            f"PostgreSQL registration-shaped transactions ({POOL_PER_SERVICE} connections)",
            registrations.rate,
            "tx/s",
            registrations.latency,
        ),
        Ceiling(
            "pg_hot_row",
            f"PostgreSQL one hot row ({sizes.operators} workers, {POOL_PER_SERVICE} connections)",
            hot_row.rate,
            "tx/s",
            hot_row.latency,
        ),
        Ceiling(
            "pg_sequential_commit",
            "PostgreSQL one connection, one small transaction after another",
            sequential.rate,
            "tx/s",
            sequential.latency,
        ),
    ]
    for ceiling in ceilings:
        context.ceilings[ceiling.key] = ceiling
        result.rows.append(
            Row(ceiling.label, ceiling.rate, ceiling.unit, ceiling.latency, note=ceiling.note)
        )
    result.details = {
        "kafka_produce": {"events": produced.events, "seconds": round(produced.seconds, 2)},
        "kafka_consume": {"events": consumed.events, "seconds": round(consumed.seconds, 2)},
        "kafka_consume_commit_each": {
            "events": committed.events,
            "seconds": round(committed.seconds, 2),
        },
        "pg_errors": {
            name: {"count": ceiling.errors, "first": ceiling.first_error}
            for name, ceiling in (
                ("registration", registrations),
                ("hot_row", hot_row),
                ("sequential", sequential),
            )
        },
    }
    result.metrics = {f"ceiling.{c.key}": c.rate for c in ceilings}
    return result

"""Scenario 6: the raw limits of Kafka and PostgreSQL on this machine, in the same run.

Kafka: the events registration publishes (same size and headers), produced with Haven's own
producer settings to a bench topic with the households topic's partition count, then read
back by a bare consumer — once as fast as it goes, once committing after every record as a
manual-ack subscriber does. PostgreSQL: see ``bench.pg_load``.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

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


LOAD_TIMEOUT_SECONDS = 300.0  # for each load-generator call


class KafkaRuns(NamedTuple):
    produced: kafka_load.ProduceResult
    consumed: kafka_load.ConsumeResult  # as fast as it goes
    committed: kafka_load.ConsumeResult  # an offset commit after every record


class PostgresRuns(NamedTuple):
    registrations: pg_load.CeilingResult
    hot_row: pg_load.CeilingResult
    sequential: pg_load.CeilingResult


def run(context: RunContext) -> ScenarioResult:
    result = ScenarioResult("ceilings", "Ceilings: raw Kafka and PostgreSQL on this machine")
    kafka = _measure_kafka(context)
    postgres = _measure_postgres(context)
    ceilings = [*_kafka_ceilings(kafka), *_postgres_ceilings(context, postgres)]
    for ceiling in ceilings:
        context.ceilings[ceiling.key] = ceiling
        result.rows.append(
            Row(ceiling.label, ceiling.rate, ceiling.unit, ceiling.latency, note=ceiling.note)
        )
    result.details = _details(kafka, postgres)
    result.metrics = {f"ceiling.{c.key}": c.rate for c in ceilings}
    return result


def _measure_kafka(context: RunContext) -> KafkaRuns:
    """Produce the ceiling events to a fresh topic, then read them back twice."""
    sizes = context.sizes
    bootstrap = context.stack.kafka_bootstrap
    asyncio.run(kafka_load.create_topic(bootstrap, CEILING_TOPIC, HOUSEHOLDS.partitions))
    produced = context.loadgen(
        kafka_load.produce,
        bootstrap,
        CEILING_TOPIC,
        sizes.ceiling_events,
        seed=1,
        today=context.today,
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    consumed = context.loadgen(
        kafka_load.consume,
        bootstrap,
        CEILING_TOPIC,
        sizes.ceiling_events,
        max_seconds=60.0,
        commit_each=False,
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    committed = context.loadgen(
        kafka_load.consume,
        bootstrap,
        CEILING_TOPIC,
        sizes.ceiling_events,
        max_seconds=sizes.ceiling_seconds,
        commit_each=True,
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    return KafkaRuns(produced, consumed, committed)


def _measure_postgres(context: RunContext) -> PostgresRuns:
    """Migrate a scratch database like registration's, then time the three workloads."""
    sizes = context.sizes
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
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    hot_row = context.loadgen(
        pg_load.hot_row,
        dsn,
        workers=sizes.operators,
        pool_size=POOL_PER_SERVICE,
        seconds=sizes.ceiling_seconds,
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    sequential = context.loadgen(
        pg_load.sequential_commits, dsn, seconds=sizes.ceiling_seconds, timeout=LOAD_TIMEOUT_SECONDS
    )
    return PostgresRuns(registrations, hot_row, sequential)


def _kafka_ceilings(kafka: KafkaRuns) -> list[Ceiling]:
    produced, consumed, committed = kafka
    return [
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
    ]


def _postgres_ceilings(context: RunContext, postgres: PostgresRuns) -> list[Ceiling]:
    registrations, hot_row, sequential = postgres
    operators = context.sizes.operators
    return [
        Ceiling(
            "pg_registration",
            f"PostgreSQL registration-shaped transactions ({POOL_PER_SERVICE} connections)",
            registrations.rate,
            "tx/s",
            registrations.latency,
        ),
        Ceiling(
            "pg_hot_row",
            f"PostgreSQL one hot row ({operators} workers, {POOL_PER_SERVICE} connections)",
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


def _details(kafka: KafkaRuns, postgres: PostgresRuns) -> dict[str, object]:
    """Events and seconds of each Kafka run, errors of each PostgreSQL one."""
    return {
        "kafka_produce": {
            "events": kafka.produced.events,
            "seconds": round(kafka.produced.seconds, 2),
        },
        "kafka_consume": {
            "events": kafka.consumed.events,
            "seconds": round(kafka.consumed.seconds, 2),
        },
        "kafka_consume_commit_each": {
            "events": kafka.committed.events,
            "seconds": round(kafka.committed.seconds, 2),
        },
        "pg_errors": {
            name: {"count": ceiling.errors, "first": ceiling.first_error}
            for name, ceiling in (
                ("registration", postgres.registrations),
                ("hot_row", postgres.hot_row),
                ("sequential", postgres.sequential),
            )
        },
    }

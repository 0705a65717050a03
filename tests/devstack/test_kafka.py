"""Kafka 4.x (local jars, container or external) with aiokafka 0.14: the features Haven uses."""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from haven.devstack import kafka as kafka_mod
from haven.devstack.infra import InfraHandle
from haven.devstack.kafka import KAFKA_VERSION, POM_PATH, LocalKafka, _new_cluster_id
from haven.devstack.processes import port_in_use
from shared.kafka import wait_for_topics

KEYS = [f"household-{i}" for i in range(5)]
PER_KEY = 20
PARTITIONS = 3
READ_TIMEOUT_S = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1)])
        errors = [(name, code) for name, code, *_ in response.topic_errors if code]
        assert not errors, f"create_topics failed: {errors}"
        await wait_for_topics(admin, [topic])  # raises if it never shows up
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str) -> list[tuple[str, int]]:
    """Send PER_KEY numbered messages for each key, idempotently; return (key, n) sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    sent: list[tuple[str, int]] = []
    try:
        for n in range(PER_KEY):
            for key in KEYS:
                await producer.send(topic, key=key.encode(), value=str(n).encode())
                sent.append((key, n))
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def consume(bootstrap: str, topic: str, group: str, expect: int) -> list[tuple[str, int]]:
    """Read ``expect`` records as a member of ``group``, committing offsets."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[str, int]] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while len(received) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                received += [(r.key.decode(), int(r.value)) for r in records if r.key and r.value]
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


async def committed_and_end_offsets(
    bootstrap: str, topic: str, group: str
) -> tuple[dict[int, int | None], dict[int, int]]:
    """The group's committed offset and the log end offset of each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = {tp.partition: end for tp, end in (await consumer.end_offsets(partitions)).items()}
        committed = {tp.partition: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()
    return committed, ends


def per_key(records: list[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for key, n in records:
        out[key].append(n)
    return dict(out)


def test_pom_default_version_matches_the_python_pin() -> None:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM_PATH.read_text())
    assert match and match.group(1) == KAFKA_VERSION
    assert KAFKA_VERSION.startswith("4.")


def test_cluster_ids_look_like_kafkas() -> None:
    for _ in range(200):
        cluster_id = _new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


def test_cds_archive_is_dumped_once_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = tmp_path / "kafka-x" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-x.jar").touch()
    kafka = LocalKafka(tmp_path / "state", cache_dir=tmp_path)
    monkeypatch.setattr(kafka_mod, "_java_version_text", lambda java: "openjdk 17")

    dump_args = kafka._cds_args("java", libs)
    assert dump_args[0].startswith("-XX:ArchiveClassesAtExit=")
    dump = Path(dump_args[0].split("=", 1)[1])
    dump.write_bytes(b"archive")
    kafka._keep_cds_dump(keep=True)

    archives = list(libs.parent.glob("cds-*.jsa"))
    assert len(archives) == 1 and not dump.exists()
    assert kafka._cds_args("java", libs)[0] == f"-XX:SharedArchiveFile={archives[0]}"
    monkeypatch.setenv("HAVEN_KAFKA_CDS", "0")
    assert kafka._cds_args("java", libs) == []


async def test_idempotent_produce_and_group_consume_keep_per_key_order(infra: InfraHandle) -> None:
    topic, group = unique("devstack-order"), unique("devstack-group")
    await create_topic(infra.kafka_bootstrap, topic)
    sent = await produce(infra.kafka_bootstrap, topic)

    received = await consume(infra.kafka_bootstrap, topic, group, expect=len(sent))

    assert sorted(received) == sorted(sent), "every message exactly once"
    assert per_key(received) == per_key(sent), "order is kept per key"
    committed, ends = await committed_and_end_offsets(infra.kafka_bootstrap, topic, group)
    assert committed == ends, "the group committed everything it read"


async def test_restart_keeps_topics_data_and_committed_offsets(infra: InfraHandle) -> None:
    if infra.kafka is None:
        pytest.skip(f"Kafka is not ours to restart ({infra.kind} infrastructure)")
    kafka = infra.kafka
    topic, group = unique("devstack-restart"), unique("devstack-group")
    await create_topic(infra.kafka_bootstrap, topic)
    sent = await produce(infra.kafka_bootstrap, topic)
    half = await consume(infra.kafka_bootstrap, topic, group, expect=len(sent))
    assert len(half) == len(sent)

    kafka.stop()
    assert not kafka.is_running()
    assert not port_in_use(kafka.port), "the port is released after stop()"
    kafka.start()
    await kafka.wait_ready_async(timeout=90)

    committed, ends = await committed_and_end_offsets(infra.kafka_bootstrap, topic, group)
    assert sum(ends.values()) == len(sent), "the records survived the restart"
    assert committed == ends, "the group's committed offsets survived the restart"


async def test_crash_and_restart_keeps_acknowledged_records(infra: InfraHandle) -> None:
    if infra.kafka is None:
        pytest.skip(f"Kafka is not ours to kill ({infra.kind} infrastructure)")
    topic = unique("devstack-crash")
    await create_topic(infra.kafka_bootstrap, topic)
    sent = await produce(infra.kafka_bootstrap, topic)

    infra.kafka.kill()
    assert not infra.kafka.is_running()
    infra.kafka.start()
    await infra.kafka.wait_ready_async(timeout=90)

    received = await consume(infra.kafka_bootstrap, topic, unique("g"), expect=len(sent))
    assert per_key(received) == per_key(sent)

"""Kafka as deployed equals the topic catalog: topics, users and their ACLs, replication."""

from __future__ import annotations

from typing import Any, cast

import pytest

from haven.devstack.kafka import KAFKA_VERSION
from shared.consumer import EventConsumer
from shared.events.catalog import AUDIT, CATALOG, CONTACTS, SERVICES
from tests.deploy.manifests import OVERLAYS, Resource, named, of_kind

DLQ_RETENTION_MS = str(90 * 24 * 3600 * 1000)


def _topics(resources: list[Resource]) -> dict[str, Resource]:
    return {t["spec"]["topicName"]: t for t in of_kind(resources, "KafkaTopic")}


def _acls(user: Resource) -> set[tuple[str, str, str]]:
    """(resource type, resource name, operation) triples; literal, allow, any host only."""
    triples = set()
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        assert resource["patternType"] == "literal", acl
        assert acl.get("type", "allow") == "allow" and acl.get("host", "*") == "*", acl
        triples |= {(resource["type"], resource["name"], op) for op in acl["operations"]}
    return triples


def _expected_acls(service: str) -> set[tuple[str, str, str]]:
    """Read straight from the catalog, independently of haven/deploy.py."""
    expected = {("topic", AUDIT.name, op) for op in ("Write", "Describe")}
    consumes_any = False
    for topic in CATALOG.topics:
        if service in topic.producers:
            expected |= {("topic", topic.name, op) for op in ("Write", "Describe")}
        if service in topic.consumers:
            consumes_any = True
            expected |= {("topic", topic.name, op) for op in ("Read", "Describe")}
            expected |= {("topic", topic.name + ".dlq", op) for op in ("Write", "Describe")}
    if consumes_any:
        expected.add(("group", f"haven-{service}", "Read"))
    return expected


def test_consumer_group_names_match_the_consumer() -> None:
    """The ACLs name the groups the services really use (shared/consumer.py's default)."""
    for service in SERVICES:
        consumer = EventConsumer(
            service=service, sessions=cast(Any, None), dead_letters=cast(Any, None)
        )
        assert consumer.group_id == f"haven-{service}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_equal_the_catalog(overlays: dict[str, list[Resource]], overlay: str) -> None:
    topics = _topics(overlays[overlay])
    assert sorted(topics) == sorted(CATALOG.all_topic_names())
    for topic in CATALOG.topics:
        spec = topics[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions, topic.name
        assert spec["config"] == topic.topic_config(), topic.name
        policy = spec["config"]["cleanup.policy"]
        assert policy == ("compact" if topic.compacted else "delete"), topic.name
        if topic.retention_ms is not None and not topic.compacted:
            assert spec["config"]["retention.ms"] == str(topic.retention_ms), topic.name
        if topic.consumers:
            dlq = topics[topic.dlq]["spec"]
            assert dlq["partitions"] == 1
            assert dlq["config"] == topic.dead_letter_config()
            if not topic.erasable_dead_letters:
                assert dlq["config"] == {"retention.ms": DLQ_RETENTION_MS}
    for resource in topics.values():
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "haven"


def test_replication_factor_three_in_prod_one_in_dev(
    dev: list[Resource], prod: list[Resource]
) -> None:
    assert {t["spec"]["replicas"] for t in of_kind(prod, "KafkaTopic")} == {3}
    assert {t["spec"]["replicas"] for t in of_kind(dev, "KafkaTopic")} == {1}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_may_do_exactly_what_the_catalog_says(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    users = {u["metadata"]["name"]: u for u in of_kind(overlays[overlay], "KafkaUser")}
    assert set(users) == {f"haven-{s}" for s in SERVICES} | {"haven-keda"}
    for service in SERVICES:
        user = users[f"haven-{service}"]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert _acls(user) == _expected_acls(service), service
        assert ("topic", AUDIT.name, "Write") in _acls(user)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_only_describes(overlays: dict[str, list[Resource]], overlay: str) -> None:
    keda = named(overlays[overlay], "KafkaUser", "haven-keda")
    consumed = {t.name for t in CATALOG.topics if t.consumers}
    groups = {f"haven-{s}" for t in CATALOG.topics for s in t.consumers}
    assert _acls(keda) == {("topic", n, "Describe") for n in consumed} | {
        ("group", g, "Describe") for g in groups
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_restricted_topics_are_readable_only_by_their_consumers(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    users = of_kind(overlays[overlay], "KafkaUser")
    for topic in CATALOG.topics:
        if not topic.restricted:
            continue
        readers = {
            u["metadata"]["name"]
            for u in users
            if {("topic", topic.name, "Read"), ("topic", topic.name, "All")} & _acls(u)
        }
        assert readers == {f"haven-{s}" for s in topic.consumers}, topic.name
    contacts_readers = {
        u["metadata"]["name"] for u in users if ("topic", CONTACTS.name, "Read") in _acls(u)
    }
    assert contacts_readers == {"haven-notifications"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_version_is_the_local_one_and_clients_authenticate(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    kafka = named(overlays[overlay], "Kafka", "haven")["spec"]["kafka"]
    assert kafka["version"] == KAFKA_VERSION
    assert kafka["authorization"]["type"] == "simple"
    for listener in kafka["listeners"]:
        assert listener["tls"] is True
        assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["config"]["auto.create.topics.enable"] is False


def _pools(resources: list[Resource]) -> dict[str, Resource]:
    return {p["metadata"]["name"]: p["spec"] for p in of_kind(resources, "KafkaNodePool")}


def test_prod_has_three_controllers_three_brokers_and_min_isr_two(prod: list[Resource]) -> None:
    pools = _pools(prod)
    controllers = sum(p["replicas"] for p in pools.values() if p["roles"] == ["controller"])
    brokers = sum(p["replicas"] for p in pools.values() if p["roles"] == ["broker"])
    assert (controllers, brokers) == (3, 3)
    assert all(len(p["roles"]) == 1 for p in pools.values()), "no dual-role node in prod"
    for pool in pools.values():
        anti = pool["template"]["pod"]["affinity"]["podAntiAffinity"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"]
    config = named(prod, "Kafka", "haven")["spec"]["kafka"]["config"]
    assert config["min.insync.replicas"] == 2
    assert config["default.replication.factor"] == 3
    assert config["offsets.topic.replication.factor"] == 3
    assert config["transaction.state.log.min.isr"] == 2
    for topic in of_kind(prod, "KafkaTopic"):
        assert int(topic["spec"]["config"].get("min.insync.replicas", 2)) >= 2


def test_dev_has_one_dual_role_node(dev: list[Resource]) -> None:
    pools = _pools(dev)
    assert [(p["replicas"], sorted(p["roles"])) for p in pools.values()] == [
        (1, ["broker", "controller"])
    ]
    config = named(dev, "Kafka", "haven")["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 1
    assert config["min.insync.replicas"] == 1

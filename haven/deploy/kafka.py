"""Kafka: a KafkaTopic per catalog topic, a KafkaUser per service with the catalog's ACLs."""

from __future__ import annotations

from haven.deploy.names import (
    KEDA_USER,
    TOPIC_REPLICAS,
    Manifest,
    cluster_label,
    consumer_group,
    kafka_user,
)
from shared.events.catalog import AUDIT, CATALOG, SERVICES, Catalog
from shared.kafka import new_topics


def kafka_topics(catalog: Catalog = CATALOG) -> list[Manifest]:
    """One KafkaTopic per catalog topic and dead-letter topic, as ``haven topics create`` makes."""
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaTopic",
            "metadata": {"name": topic.name, "labels": cluster_label()},
            "spec": {
                "topicName": topic.name,
                "partitions": topic.num_partitions,
                "replicas": TOPIC_REPLICAS,
                "config": dict(topic.topic_configs),
            },
        }
        for topic in new_topics(catalog, TOPIC_REPLICAS)
    ]


def _acl(resource_type: str, name: str, *operations: str) -> Manifest:
    return {
        "resource": {"type": resource_type, "name": name, "patternType": "literal"},
        "operations": list(operations),
    }


def service_acls(service: str, catalog: Catalog = CATALOG) -> list[Manifest]:
    """What the catalog says a service may do: write what it produces, read what it consumes."""
    produced = {t.name: t for t in catalog.produced_by(service)}
    produced.setdefault(AUDIT.name, AUDIT)  # every service writes its audit trail
    acls = [_acl("topic", name, "Write", "Describe") for name in produced]
    consumed = catalog.consumed_by(service)
    acls += [_acl("topic", t.name, "Read", "Describe") for t in consumed]
    acls += [_acl("topic", t.dlq, "Write", "Describe") for t in consumed]
    if consumed:
        acls.append(_acl("group", consumer_group(service), "Read"))
    return acls


def keda_acls(catalog: Catalog = CATALOG) -> list[Manifest]:
    """KEDA reads consumer lag only: Describe on consumed topics and the consumer groups."""
    consumed = [t for t in catalog.topics if t.consumers]
    groups = sorted({consumer_group(s) for t in consumed for s in t.consumers})
    return [_acl("topic", t.name, "Describe") for t in consumed] + [
        _acl("group", g, "Describe") for g in groups
    ]


def _kafka_user(name: str, acls: list[Manifest], description: str) -> Manifest:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {
            "name": name,
            "labels": cluster_label(),
            "annotations": {"haven.org/description": description},
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def kafka_users(catalog: Catalog = CATALOG) -> list[Manifest]:
    """A SCRAM user per service with the catalog's ACLs, and KEDA's lag reader."""
    users = [
        _kafka_user(
            kafka_user(service),
            service_acls(service, catalog),
            f"The {service} service: produces and consumes what the topic catalog says.",
        )
        for service in SERVICES
    ]
    users.append(
        _kafka_user(KEDA_USER, keda_acls(catalog), "KEDA: reads consumer-group lag, no records.")
    )
    return users

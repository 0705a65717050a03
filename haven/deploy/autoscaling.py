"""Autoscaling (KEDA on consumer lag, a CPU HPA) and disruption budgets: components/ha."""

from __future__ import annotations

from haven.deploy.names import (
    CPU_TARGET_PERCENT,
    HA_MIN_REPLICAS,
    HTTP_MAX_REPLICAS,
    KAFKA_BOOTSTRAP,
    KAFKA_CA_SECRET,
    KEDA_USER,
    LAG_THRESHOLD,
    PART_OF,
    Manifest,
    consumer_group,
    pod_labels,
    selector,
    workload,
)
from shared.events.catalog import CATALOG, SERVICES, Catalog, Topic


def max_consumer_replicas(service: str, catalog: Catalog = CATALOG) -> int | None:
    """Replicas beyond the smallest consumed topic's partitions would idle on it; None: no topic."""
    consumed = catalog.consumed_by(service)
    return min(t.partitions for t in consumed) if consumed else None


def _scale_down_behavior() -> Manifest:
    return {"scaleDown": {"stabilizationWindowSeconds": 300}}


def _kafka_trigger(service: str, topic: Topic) -> Manifest:
    return {
        "type": "kafka",
        "name": f"lag-{topic.name.replace('.', '-')}",
        "metadata": {
            "bootstrapServers": KAFKA_BOOTSTRAP,
            "consumerGroup": consumer_group(service),
            "topic": topic.name,
            "lagThreshold": str(LAG_THRESHOLD),
            "offsetResetPolicy": "earliest",  # as the consumers (shared/consumer/)
            "sasl": "scram_sha512",
            "tls": "enable",
        },
        "authenticationRef": {"name": "haven-keda-kafka"},
    }


def _target(service: str) -> Manifest:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload(service)}


def _cpu_autoscaler(service: str) -> Manifest:
    """A CPU HorizontalPodAutoscaler, for a service that consumes no topic."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": workload(service), "labels": pod_labels(service)},
        "spec": {
            "scaleTargetRef": _target(service),
            "minReplicas": HA_MIN_REPLICAS,
            "maxReplicas": HTTP_MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT},
                    },
                }
            ],
            "behavior": _scale_down_behavior(),
        },
    }


def _scaled_object(service: str, cap: int, catalog: Catalog) -> Manifest:
    """KEDA on the lag of every consumed topic, and on CPU."""
    triggers = [_kafka_trigger(service, t) for t in catalog.consumed_by(service)]
    triggers.append(
        {
            "type": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": str(CPU_TARGET_PERCENT)},
        }
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": workload(service), "labels": pod_labels(service)},
        "spec": {
            "scaleTargetRef": _target(service),
            "minReplicaCount": HA_MIN_REPLICAS,
            "maxReplicaCount": max(cap, HA_MIN_REPLICAS),
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _scale_down_behavior()}},
            "triggers": triggers,
        },
    }


def _keda_authentication() -> list[Manifest]:
    """How KEDA logs in to Kafka: its user name, password and the cluster CA."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "haven-keda-kafka", "labels": dict(PART_OF)},
            "data": {"username": KEDA_USER},
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": "haven-keda-kafka", "labels": dict(PART_OF)},
            "spec": {
                "configMapTargetRef": [
                    {"parameter": "username", "name": "haven-keda-kafka", "key": "username"}
                ],
                "secretTargetRef": [
                    {"parameter": "password", "name": KEDA_USER, "key": "password"},
                    {"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"},
                ],
            },
        },
    ]


def autoscalers(catalog: Catalog = CATALOG) -> list[Manifest]:
    """KEDA on consumer lag (and CPU) for consumers, a CPU HPA for the HTTP-only service."""
    resources: list[Manifest] = []
    for service in SERVICES:
        cap = max_consumer_replicas(service, catalog)
        if cap is None:
            resources.append(_cpu_autoscaler(service))
        else:
            resources.append(_scaled_object(service, cap, catalog))
    return resources + _keda_authentication()


def disruption_budgets() -> list[Manifest]:
    """At most one pod of a service away at a time (drains, upgrades)."""
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": workload(service), "labels": pod_labels(service)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(service)}},
        }
        for service in SERVICES
    ]

"""NetworkPolicies: default deny, then exactly the flows Haven needs."""

from __future__ import annotations

from typing import Any

from haven.deploy.names import (
    CNPG_NAMESPACE,
    HTTPS_PORT,
    INGRESS_NAMESPACE,
    KAFKA_LISTENER_PORT,
    MONITORING_NAMESPACE,
    PART_OF,
    PG_CLUSTER,
    PG_PORT,
    SERVICE_COMPONENT,
    SMTP_PORTS,
    Manifest,
    cluster_label,
    pod_labels,
    workload,
)
from shared.events.catalog import SERVICES


def _namespace(name: str) -> Manifest:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _tcp(*ports: int | str) -> list[Manifest]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _prometheus_peer() -> Manifest:
    return {
        **_namespace(MONITORING_NAMESPACE),
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }


def _dns_egress() -> Manifest:
    return {
        "to": [
            {
                **_namespace("kube-system"),
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def _kafka_pods() -> Manifest:
    return {"podSelector": {"matchLabels": {**cluster_label(), "strimzi.io/kind": "Kafka"}}}


def _postgres_pods() -> Manifest:
    return {"podSelector": {"matchLabels": {"cnpg.io/cluster": PG_CLUSTER}}}


def _haven_services() -> Manifest:
    return {"podSelector": {"matchLabels": {**PART_OF, **SERVICE_COMPONENT}}}


def _network_policy(name: str, pod_selector: Manifest, **spec: Any) -> Manifest:
    types = [kind for kind, key in (("Ingress", "ingress"), ("Egress", "egress")) if key in spec]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": dict(PART_OF)},
        "spec": {"podSelector": pod_selector, "policyTypes": types, **spec},
    }


def network_policies() -> list[Manifest]:
    """Default deny, then exactly the flows Haven needs (Strimzi guards its own pods)."""
    policies = [
        _network_policy("default-deny-ingress", {}, ingress=[]),
    ]
    for service in SERVICES:
        egress = [
            _dns_egress(),
            {"to": [_kafka_pods()], "ports": _tcp(KAFKA_LISTENER_PORT)},
            {"to": [_postgres_pods()], "ports": _tcp(PG_PORT)},
        ]
        if service == "notifications":  # SMTP relay, SMS gateway and webhooks outside
            egress.append(
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(*SMTP_PORTS, HTTPS_PORT)}
            )
        policies.append(
            _network_policy(
                workload(service),
                {"matchLabels": pod_labels(service)},
                ingress=[
                    {"from": [_namespace(INGRESS_NAMESPACE)], "ports": _tcp("http")},
                    {"from": [_prometheus_peer()], "ports": _tcp("http")},
                ],
                egress=egress,
            )
        )
    policies.append(
        _network_policy(
            PG_CLUSTER,
            {"matchLabels": {"cnpg.io/cluster": PG_CLUSTER}},
            ingress=[
                {"from": [_haven_services()], "ports": _tcp(PG_PORT)},
                {"from": [_postgres_pods()], "ports": _tcp(PG_PORT, 8000)},  # replication, status
                {"from": [_namespace(CNPG_NAMESPACE)], "ports": _tcp(PG_PORT, 8000)},  # operator
                {"from": [_prometheus_peer()], "ports": _tcp(9187)},
            ],
        )
    )
    return policies

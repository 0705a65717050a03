"""NetworkPolicies: ingress denied by default, then exactly the flows Haven needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.events.catalog import SERVICES
from tests.deploy.manifests import OVERLAYS, Resource, named, of_kind, selects

Flow = tuple[str, str]  # (peer, ports), both canonical JSON
Ports = list[tuple[str, int | str]]
Peer = tuple[dict[str, Any], Ports]

DNS: Peer = (
    {"namespace": "kube-system", "pods": {"k8s-app": "kube-dns"}},
    [("UDP", 53), ("TCP", 53)],
)
KAFKA: Peer = (
    {"pods": {"strimzi.io/cluster": "haven", "strimzi.io/kind": "Kafka"}},
    [("TCP", 9093)],
)
POSTGRES: Peer = ({"pods": {"cnpg.io/cluster": "haven-pg"}}, [("TCP", 5432)])
OUTSIDE_SMTP_HTTPS: Peer = (
    {"cidr": "0.0.0.0/0"},
    [("TCP", 25), ("TCP", 465), ("TCP", 587), ("TCP", 443)],
)
OUTSIDE_HTTPS: Peer = ({"cidr": "0.0.0.0/0"}, [("TCP", 443)])
INGRESS_CONTROLLER: Peer = ({"namespace": "ingress-nginx"}, [("TCP", "http")])
PROMETHEUS: Peer = (
    {"namespace": "monitoring", "pods": {"app.kubernetes.io/name": "prometheus"}},
    [("TCP", "http")],
)
HAVEN_SERVICES: dict[str, Any] = {
    "pods": {"app.kubernetes.io/component": "service", "app.kubernetes.io/part-of": "haven"}
}


def _flow(peer: dict[str, Any], ports: Ports) -> Flow:
    return json.dumps(peer, sort_keys=True), json.dumps(sorted(ports, key=str))


def _peer(peer: Resource) -> dict[str, Any]:
    canonical: dict[str, Any] = {}
    if "ipBlock" in peer:
        assert not peer["ipBlock"].get("except")
        canonical["cidr"] = peer["ipBlock"]["cidr"]
    if "namespaceSelector" in peer:
        canonical["namespace"] = peer["namespaceSelector"]["matchLabels"][
            "kubernetes.io/metadata.name"
        ]
    if "podSelector" in peer:
        canonical["pods"] = peer["podSelector"]["matchLabels"]
    return canonical


def _flows(policies: list[Resource], labels: dict[str, str], direction: str) -> set[Flow] | None:
    """The flows allowed to/from pods with these labels; None when nothing restricts them."""
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return None
    flows = set()
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            ports = [(p["protocol"], p["port"]) for p in rule["ports"]]
            flows |= {_flow(_peer(peer), ports) for peer in rule[peers]}
    return flows


def _expected_egress(service: str, overlay: str) -> set[Flow]:
    flows = {_flow(*DNS), _flow(*KAFKA), _flow(*POSTGRES)}
    if service == "notifications":  # SMTP relay, SMS gateway, webhooks
        flows.add(_flow(*OUTSIDE_SMTP_HTTPS))
    if overlay == "prod":  # the identity provider's JWKS (HAVEN_AUTH_MODE=jwks)
        flows.add(_flow(*OUTSIDE_HTTPS))
    return flows


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_is_denied_by_default(overlays: dict[str, list[Resource]], overlay: str) -> None:
    deny = named(overlays[overlay], "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_have_exactly_the_flows_they_need(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    policies = of_kind(overlays[overlay], "NetworkPolicy")
    for service in SERVICES:
        labels = named(overlays[overlay], "Deployment", f"haven-{service}")["spec"]["template"][
            "metadata"
        ]["labels"]
        assert _flows(policies, labels, "Ingress") == {
            _flow(*INGRESS_CONTROLLER),
            _flow(*PROMETHEUS),
        }, service
        assert _flows(policies, labels, "Egress") == _expected_egress(service, overlay), service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_admits_only_haven_its_operator_and_prometheus(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    policies = of_kind(overlays[overlay], "NetworkPolicy")
    instance = {"cnpg.io/cluster": "haven-pg", "cnpg.io/instanceRole": "primary"}
    assert _flows(policies, instance, "Ingress") == {
        _flow(HAVEN_SERVICES, [("TCP", 5432)]),
        _flow({"pods": {"cnpg.io/cluster": "haven-pg"}}, [("TCP", 5432), ("TCP", 8000)]),
        _flow({"namespace": "cnpg-system"}, [("TCP", 5432), ("TCP", 8000)]),
        _flow(PROMETHEUS[0], [("TCP", 9187)]),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_listener_admits_only_the_services_and_keda(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    (listener,) = named(overlays[overlay], "Kafka", "haven")["spec"]["kafka"]["listeners"]
    assert {json.dumps(_peer(p), sort_keys=True) for p in listener["networkPolicyPeers"]} == {
        json.dumps(HAVEN_SERVICES, sort_keys=True),
        json.dumps(
            {"namespace": "keda", "pods": {"app.kubernetes.io/name": "keda-operator"}},
            sort_keys=True,
        ),
    }

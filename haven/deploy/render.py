"""Rendering every generated manifest to YAML, checking it is current, writing it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from haven.deploy.autoscaling import autoscalers, disruption_budgets
from haven.deploy.kafka import kafka_topics, kafka_users
from haven.deploy.monitoring import (
    dashboard_copies,
    dashboard_files,
    monitoring_component,
    prometheus_rules,
    rule_files,
)
from haven.deploy.names import BASE_GENERATED, GENERATED_HEADER, HA_GENERATED, MONITORING_DIR
from haven.deploy.network import network_policies
from haven.deploy.postgres import postgres_databases, postgres_roles_patch
from haven.deploy.workloads import service_resources
from shared.events.catalog import SERVICES


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with lists indented under their key (as kubectl prints them)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml(documents: Iterable[Mapping[str, Any]], source: str) -> str:
    body = yaml.dump_all(
        list(documents), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
    return GENERATED_HEADER.format(source=source) + body


def render() -> dict[Path, str]:
    """Every generated file and its content."""
    catalog_src = "shared/events/catalog.py"
    services = [doc for service in SERVICES for doc in service_resources(service)]
    return {
        BASE_GENERATED / "kafka-topics.yaml": to_yaml(kafka_topics(), catalog_src),
        BASE_GENERATED / "kafka-users.yaml": to_yaml(kafka_users(), catalog_src),
        BASE_GENERATED / "postgres-databases.yaml": to_yaml(
            postgres_databases(), "shared/events/catalog.py SERVICES"
        ),
        BASE_GENERATED / "postgres-roles.yaml": to_yaml(
            [postgres_roles_patch()], "shared/events/catalog.py SERVICES (a patch of the Cluster)"
        ),
        BASE_GENERATED / "services.yaml": to_yaml(services, "SERVICES and shared/settings.py"),
        BASE_GENERATED / "network-policies.yaml": to_yaml(
            network_policies(), "SERVICES and the flows they need"
        ),
        HA_GENERATED / "autoscaling.yaml": to_yaml(autoscalers(), catalog_src),
        HA_GENERATED / "disruption-budgets.yaml": to_yaml(disruption_budgets(), "SERVICES"),
        MONITORING_DIR / "prometheus-rules.yaml": to_yaml(
            prometheus_rules(rule_files()), "deploy/prometheus/*.rules.yml"
        ),
        MONITORING_DIR / "kustomization.yaml": to_yaml(
            [monitoring_component(dashboard_files())], "deploy/grafana/dashboards/*.json"
        ),
        **dashboard_copies(dashboard_files()),
    }


def stale_files(rendered: Mapping[Path, str] | None = None) -> list[Path]:
    """Generated files missing or different from what the sources give now."""
    rendered = render() if rendered is None else rendered
    return [
        path
        for path, text in rendered.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def write(rendered: Mapping[Path, str] | None = None) -> list[Path]:
    """Write the generated files that changed; return them."""
    rendered = render() if rendered is None else rendered
    changed = stale_files(rendered)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered[path], encoding="utf-8")
    return changed

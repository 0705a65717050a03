"""Monitoring: a PrometheusRule per rules file, a Grafana dashboard ConfigMap per dashboard."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from haven.deploy.names import (
    DASHBOARDS_DIR,
    MONITORING_DIR,
    PART_OF,
    PROMETHEUS_RELEASE_LABEL,
    RULES_DIR,
    Manifest,
)


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    return sorted(rules_dir.glob("*.rules.yml"))


def dashboard_files(dashboards_dir: Path = DASHBOARDS_DIR) -> list[Path]:
    return sorted(dashboards_dir.glob("*.json"))


def _haven_name(stem: str) -> str:
    return stem if stem.startswith("haven") else f"haven-{stem}"


def prometheus_rules(files: Iterable[Path]) -> list[Manifest]:
    """One PrometheusRule per rules file, its groups exactly as in the file."""
    rules = []
    for path in files:
        groups = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", [])
        rules.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {
                    "name": _haven_name(path.name.removesuffix(".rules.yml")),
                    "labels": {**PART_OF, **PROMETHEUS_RELEASE_LABEL},
                    "annotations": {"haven.org/source": f"deploy/prometheus/{path.name}"},
                },
                "spec": {"groups": groups},
            }
        )
    return rules


COMPONENT_DASHBOARDS = "dashboards"
"""Where the generator copies the dashboards inside the component: kustomize refuses files
outside a kustomization's root, so plain ``kubectl kustomize`` and ``kubectl apply -k`` work."""


def dashboard_copies(files: Iterable[Path]) -> dict[Path, str]:
    """Each dashboard as the component carries it (a copy of deploy/grafana/dashboards)."""
    return {
        MONITORING_DIR / COMPONENT_DASHBOARDS / path.name: path.read_text(encoding="utf-8")
        for path in files
    }


def monitoring_component(files: Iterable[Path]) -> Manifest:
    """The monitoring component: the PrometheusRules and a labelled ConfigMap per dashboard,
    from the copies inside the component (:func:`dashboard_copies`)."""
    dashboards = Path(COMPONENT_DASHBOARDS)
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": ["prometheus-rules.yaml"],
        "configMapGenerator": [
            {
                "name": _haven_name(path.stem) + "-dashboard",
                "files": [f"{(dashboards / path.name).as_posix()}"],
                "options": {
                    "labels": {"grafana_dashboard": "1", **PART_OF},
                    "annotations": {"grafana_folder": "Haven"},
                    "disableNameSuffixHash": True,
                },
            }
            for path in files
        ],
    }

"""What Prometheus and Grafana get in the cluster is the files in deploy/prometheus and
deploy/grafana, not copies: the dashboards byte for byte, the rules group for group."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.manifests import OVERLAYS, ROOT, Resource, of_kind

DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboards_are_the_files(overlays: dict[str, list[Resource]], overlay: str) -> None:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files
    deployed = {
        key: value
        for config_map in of_kind(overlays[overlay], "ConfigMap")
        if config_map["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        for key, value in config_map["data"].items()
    }
    assert sorted(deployed) == [f.name for f in files]
    for path in files:
        assert deployed[path.name].encode() == path.read_bytes(), path.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alert_rules_are_the_files(overlays: dict[str, list[Resource]], overlay: str) -> None:
    files = sorted(RULES.glob("*.rules.yml"))
    assert files
    deployed = {
        r["metadata"]["annotations"]["haven.org/source"]: r
        for r in of_kind(overlays[overlay], "PrometheusRule")
    }
    assert sorted(deployed) == [f"deploy/prometheus/{f.name}" for f in files]
    for path in files:
        rule = deployed[f"deploy/prometheus/{path.name}"]
        assert rule["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"], path.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_selects_every_monitoring_resource(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        resources = of_kind(overlays[overlay], kind)
        assert resources, kind
        for resource in resources:
            labels = resource["metadata"]["labels"]
            assert labels.get("release") == "kube-prometheus-stack", resource["metadata"]["name"]

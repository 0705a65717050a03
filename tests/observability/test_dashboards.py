"""The dashboards' shape: provisioned from files, data source chosen by a variable, every panel
a query. (Their PromQL is evaluated against a real Prometheus in test_prometheus_e2e.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.observability.dashboards import DASHBOARDS, ROOT, load, panels, queries

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def test_the_two_dashboards_of_the_issue_exist() -> None:
    assert {p.name for p in DASHBOARDS} == {"operations-overview.json", "service-health.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_a_dashboard_takes_its_data_source_from_a_variable(path: Path) -> None:
    board = load(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(board):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_have_unique_ids_and_titles(path: Path) -> None:
    board = load(path)
    ids = [p["id"] for p in board["panels"]]
    titles = [p["title"] for p in panels(board)]
    assert len(set(ids)) == len(ids)
    assert len(set(titles)) == len(titles)
    assert board["uid"].startswith("haven-")


def test_every_query_is_plain_promql_once_grafana_variables_are_replaced() -> None:
    for query in queries():
        assert query.promql


def test_labels_in_queries_are_bounded() -> None:
    unbounded = ("household_id", "person", "name=", "phone", "document", "case_number")
    for query in queries():
        assert not any(word in query.expr for word in unbounded), str(query)


def test_provisioning_points_at_the_dashboards_and_a_prometheus() -> None:
    dashboards = yaml.safe_load((PROVISIONING / "dashboards" / "haven.yml").read_text())
    assert dashboards["providers"][0]["type"] == "file"
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["type"] == "prometheus"

"""docs/observability.md names every business metric of the catalog, every alert and both
dashboards, so it cannot silently fall behind them."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from shared import metrics
from tests.observability.dashboards import DASHBOARDS, ROOT
from tests.observability.test_alert_rules import alert_names

DOC = (ROOT / "docs" / "observability.md").read_text()


def catalog_names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name  # the name without the _total suffix of counters
            names.add(f"{name}_total" if value._type == "counter" else name)
    return names


def test_every_business_metric_is_documented() -> None:
    names = catalog_names()
    assert len(names) >= 15
    assert sorted(n for n in names if n not in DOC) == []


def test_every_alert_and_dashboard_is_documented() -> None:
    assert sorted(a for a in alert_names() if a not in DOC) == []
    assert sorted(p.name for p in DASHBOARDS if p.name not in DOC) == []

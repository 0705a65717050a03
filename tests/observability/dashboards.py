"""Reading the Grafana dashboards of deploy/grafana/dashboards: panels and their PromQL."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))

# Grafana's variables, as a query over the last minutes of a test run would see them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    '=~"$site"': '=~".*"',
}
_UNKNOWN_VARIABLE = re.compile(r"\$\w+")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def promql(self) -> str:
        """The expression with Grafana's variables replaced by plain PromQL."""
        expr = self.expr
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        leftover = _UNKNOWN_VARIABLE.findall(expr)
        assert not leftover, f"{self}: unknown Grafana variables {leftover}"
        return expr

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.extend(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def queries() -> list[Query]:
    return [
        Query(path.name, panel["title"], target["refId"], target["expr"])
        for path in DASHBOARDS
        for panel in panels(load(path))
        for target in panel["targets"]
    ]

"""What a run produces: one row per measurement, grouped by scenario, plus the machine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.monitor import MachineStats, ProcessStats
from bench.stats import LatencySummary


@dataclass
class Row:
    """One line of the results table."""

    label: str
    throughput: float | None = None
    unit: str = ""
    latency: LatencySummary | None = None
    requests: int | None = None
    errors: int | None = None
    ceiling: str | None = None  # key in RunResult.ceilings
    ceiling_ratio: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"] = self.latency.as_dict() if self.latency else None
        return data


@dataclass
class ScenarioResult:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rss: dict[str, ProcessStats] = field(default_factory=dict)
    machine: MachineStats | None = None
    cores: dict[str, float] | None = None  # cores used on average by each part of the run
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "rows": [row.as_dict() for row in self.rows],
            "metrics": self.metrics,
            "rss": {name: asdict(stats) for name, stats in self.rss.items()},
            "machine": asdict(self.machine) if self.machine else None,
            "cores": self.cores,
            "notes": self.notes,
            "details": self.details,
        }


@dataclass
class Ceiling:
    """A raw limit measured on this machine in this run."""

    key: str
    label: str
    rate: float
    unit: str
    latency: LatencySummary | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"] = self.latency.as_dict() if self.latency else None
        return data


@dataclass
class RunResult:
    stamp: str
    mode: str
    started_at: str
    finished_at: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    ceilings: dict[str, Ceiling] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stamp": self.stamp,
            "mode": self.mode,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "machine": self.machine,
            "ceilings": {key: c.as_dict() for key, c in self.ceilings.items()},
            "scenarios": [s.as_dict() for s in self.scenarios],
            "targets": self.targets,
            "notes": self.notes,
        }

    def metrics(self) -> dict[str, float | None]:
        """Every scenario's metrics, flat, plus the largest service RSS peak."""
        merged: dict[str, float | None] = {}
        for scenario in self.scenarios:
            merged.update(scenario.metrics)
        peaks = [stats.peak_mb for s in self.scenarios for stats in s.rss.values()]
        merged["rss.max_peak_mb"] = max(peaks) if peaks else None
        return merged

"""Writing a run down: JSON (the record), Markdown (the table), PNG plots, the console table.

Everything after the JSON is rendered from the JSON's dictionary, so a report can be
re-rendered from a results file: ``python -m bench.report bench/results/<stamp>.json``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SERVICES = ("registration", "distribution", "referral", "notifications")
MISSING = "\u2013"  # an en dash for "no value"
CAVEAT = (
    "Everything runs on this one machine: the load generator (its own process and event loop), "
    "the four services, Kafka and PostgreSQL share the same cores, so every figure includes "
    "the cost of generating the load, and other work on the machine (such as other engineers' "
    "test runs) shows up as noise."
)


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if isinstance(value, int | float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return str(value)


def _ratio(value: Any) -> str:
    return MISSING if value is None else f"{value:.0%}" if value >= 0.01 else f"{value:.1%}"


def _latency(row: Mapping[str, Any], key: str) -> str:
    latency = row.get("latency") or {}
    return _number(latency.get(key))


def result_rows(data: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for scenario in data["scenarios"]:
        for row in scenario["rows"]:
            yield scenario["name"], row


def write_json(data: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _met(outcome: Mapping[str, Any]) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[outcome["met"]]


def markdown(data: Mapping[str, Any]) -> str:
    """The run as Markdown: machine, targets, results, ceilings, memory, notes."""
    lines = [
        *_header_lines(data),
        *_targets_lines(data),
        *_results_lines(data),
        *_ceilings_lines(data),
        *_resources_lines(data),
        *_cores_table(data),
        *_notes_lines(data),
    ]
    return "\n".join(lines) + "\n"


def _header_lines(data: Mapping[str, Any]) -> list[str]:
    """The title, the machine and the run's time span, and the caveat."""
    machine = data.get("machine", {})
    return [
        f"# Haven benchmark {data['stamp']} ({data['mode']} run)",
        "",
        f"Machine: {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('ram_gib', '?')} GiB RAM; Python {machine.get('python', '?')}, "
        f"PostgreSQL {machine.get('postgresql', '?')}, Kafka {machine.get('kafka', '?')}; "
        f"load average {machine.get('load_before', '?')} before, "
        f"{machine.get('load_after', '?')} after. "
        f"Run from {data['started_at']} to {data.get('finished_at', '?')}.",
        "",
        f"> {CAVEAT}",
    ]


def _targets_lines(data: Mapping[str, Any]) -> list[str]:
    """Each target, what was measured and whether it was met."""
    lines = [
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
    ]
    for outcome in data.get("targets", []):
        measured = outcome["measured"]
        shown = (
            _ratio(measured)
            if outcome["unit"] == "share" and measured is not None
            else f"{_number(measured)} {outcome['unit']}"
        )
        lines.append(f"| {outcome['description']} | {shown} | {_met(outcome)} |")
    return lines


def _results_lines(data: Mapping[str, Any]) -> list[str]:
    """Every scenario's rows: throughput, latency percentiles, counts, share of a ceiling."""
    lines = [
        "",
        "## Results",
        "",
        "| scenario | measurement | throughput | p50 ms | p95 ms | p99 ms | requests | errors "
        "| vs ceiling | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario, row in result_rows(data):
        throughput = (
            f"{_number(row['throughput'])} {row['unit']}"
            if row["throughput"] is not None
            else MISSING
        )
        versus = MISSING
        if row.get("ceiling_ratio") is not None:
            versus = f"{_ratio(row['ceiling_ratio'])} of {row['ceiling']}"
        lines.append(
            f"| {scenario} | {row['label']} | {throughput} | {_latency(row, 'p50_ms')} "
            f"| {_latency(row, 'p95_ms')} | {_latency(row, 'p99_ms')} "
            f"| {_number(row['requests'], 0)} | {_number(row['errors'], 0)} | {versus} "
            f"| {row['note']} |"
        )
    return lines


def _ceilings_lines(data: Mapping[str, Any]) -> list[str]:
    """The raw Kafka and PostgreSQL ceilings measured in the same run."""
    lines = [
        "",
        "## Ceilings (same machine, same run)",
        "",
        "| key | what | rate | p50 ms | p99 ms | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for key, ceiling in data.get("ceilings", {}).items():
        lines.append(
            f"| {key} | {ceiling['label']} | {_number(ceiling['rate'])} {ceiling['unit']} "
            f"| {_latency(ceiling, 'p50_ms')} | {_latency(ceiling, 'p99_ms')} "
            f"| {ceiling['note']} |"
        )
    return lines


def _resources_lines(data: Mapping[str, Any]) -> list[str]:
    """Each service's memory and CPU seconds, and how busy the machine was, per scenario."""
    lines = [
        "",
        "## Resources: each service's RSS in MB (peak / mean) and CPU seconds, per scenario",
        "",
        "| scenario | seconds | machine busy | " + " | ".join(SERVICES) + " |",
        "|---|---:|---:|" + "---:|" * len(SERVICES),
    ]
    for scenario in data["scenarios"]:
        cells = []
        for service in SERVICES:
            stats = scenario.get("rss", {}).get(service)
            cells.append(
                f"{_number(stats['peak_mb'], 0)} / {_number(stats['mean_mb'], 0)} MB, "
                f"{_number(stats.get('cpu_seconds'))} s"
                if stats
                else MISSING
            )
        machine_stats = scenario.get("machine") or {}
        busy = _ratio(machine_stats.get("busy"))
        lines.append(
            f"| {scenario['name']} | {_number(scenario['seconds'], 0)} | {busy} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def _notes_lines(data: Mapping[str, Any]) -> list[str]:
    """The run's notes, then each scenario's failure and notes; nothing when there are none."""
    notes = list(data.get("notes", []))
    for scenario in data["scenarios"]:
        if scenario.get("error"):
            notes.append(f"{scenario['name']} failed: {scenario['error']}")
        notes += [f"{scenario['name']}: {note}" for note in scenario.get("notes", [])]
    if not notes:
        return []
    return ["", "## Notes", ""] + [f"- {note}" for note in notes]


def _cores_table(data: Mapping[str, Any]) -> list[str]:
    """Where the machine's cores went in each scenario: every part of the run, busiest first."""
    scenarios = [s for s in data["scenarios"] if s.get("cores")]
    if not scenarios:
        return []
    lines = [
        "",
        "## Where the cores went, per scenario",
        "",
        "Cores used on average by each part of the run (CPU seconds / wall seconds; PostgreSQL "
        'and Kafka with all their processes, also connections that ended; "other": the '
        "machine's busy time no process of this run accounts for).",
        "",
        "| scenario | seconds | cores used by | machine total |",
        "|---|---:|---|---:|",
    ]
    for scenario in scenarios:
        cores: Mapping[str, float] = scenario["cores"]
        parts = ", ".join(f"{part} {used:.2f}" for part, used in cores.items() if used >= 0.005)
        lines.append(
            f"| {scenario['name']} | {_number(scenario['seconds'], 0)} | {parts} "
            f"| {sum(cores.values()):.2f} |"
        )
    return lines


def print_table(data: Mapping[str, Any], console: Console) -> None:
    table = Table(title=f"Haven benchmark {data['stamp']} ({data['mode']})", show_lines=False)
    for column in ("scenario", "measurement", "throughput", "p50", "p95", "p99", "err", "vs ceil"):
        table.add_column(
            column, justify="left" if column in ("scenario", "measurement") else "right"
        )
    for scenario, row in result_rows(data):
        throughput = (
            f"{_number(row['throughput'])} {row['unit']}"
            if row["throughput"] is not None
            else MISSING
        )
        table.add_row(
            scenario,
            row["label"],
            throughput,
            _latency(row, "p50_ms"),
            _latency(row, "p95_ms"),
            _latency(row, "p99_ms"),
            _number(row["errors"], 0),
            _ratio(row.get("ceiling_ratio")),
        )
    console.print(table)
    targets = Table(title="Targets")
    targets.add_column("target")
    targets.add_column("measured", justify="right")
    targets.add_column("")
    for outcome in data.get("targets", []):
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "[dim]not measured[/]"}
        measured = outcome["measured"]
        shown = (
            _ratio(measured)
            if outcome["unit"] == "share" and measured is not None
            else f"{_number(measured)} {outcome['unit']}"
        )
        targets.add_row(
            outcome["description"],
            shown,
            verdict[outcome["met"]],
        )
    console.print(targets)


# --- plots ----------------------------------------------------------------------------------


def write_plots(data: Mapping[str, Any], stem: Path) -> list[Path]:
    """Latency-vs-throughput of intake (and the other closed-loop phases), and consumer rates
    against their ceilings. Needs matplotlib; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = (_plot_latency_throughput(plt, data, stem), _plot_consumers(plt, data, stem))
    return [path for path in plots if path is not None]


def _save(plt: Any, figure: Any, stem: Path, suffix: str) -> Path:
    """Write ``figure`` next to the results as ``<stem><suffix>.png`` and close it."""
    figure.tight_layout()
    path = stem.with_name(stem.name + f"{suffix}.png")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_latency_throughput(plt: Any, data: Mapping[str, Any], stem: Path) -> Path | None:
    """Intake's p50/p95/p99 per concurrency level and every other row's p99, against rate."""
    points = [
        (scenario, row)
        for scenario, row in result_rows(data)
        if row["throughput"] is not None and row.get("latency") and row["latency"]["p99_ms"]
    ]
    intake = [row for scenario, row in points if scenario == "intake"]
    others = [(scenario, row) for scenario, row in points if scenario != "intake"]
    if not (intake or others):
        return None
    figure, axis = plt.subplots(figsize=(9, 5.5))
    if intake:
        _plot_intake_levels(axis, intake)
    for scenario, row in others:
        axis.plot(
            row["throughput"],
            row["latency"]["p99_ms"],
            "D",
            label=f"{scenario}: {row['label']} (p99)",
        )
    axis.axvline(500, color="grey", linestyle=":", linewidth=1)
    axis.axhline(250, color="grey", linestyle=":", linewidth=1)
    axis.text(500, axis.get_ylim()[1] * 0.95, " 500/s target", fontsize=8, color="grey")
    axis.set_xlabel("throughput (per second)")
    axis.set_ylabel("latency (ms)")
    axis.set_yscale("log")
    axis.set_title(f"Latency vs throughput, {data['stamp']} ({data['mode']})")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    return _save(plt, figure, stem, "-latency-throughput")


def _plot_intake_levels(axis: Any, intake: list[Mapping[str, Any]]) -> None:
    """Intake's three percentile curves, each level's point labelled with its concurrency."""
    rates = [row["throughput"] for row in intake]
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^-")):
        axis.plot(rates, [row["latency"][key] for row in intake], style, label=f"intake {key[:3]}")
    for row in intake:
        axis.annotate(
            row["label"].replace("concurrency ", "c="),
            (row["throughput"], row["latency"]["p99_ms"]),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )


def _plot_consumers(plt: Any, data: Mapping[str, Any], stem: Path) -> Path | None:
    """The recovery scenario's drain rates as bars, next to the raw consumer ceilings."""
    consumers = [row for scenario, row in result_rows(data) if scenario == "recovery"]
    ceilings = data.get("ceilings", {})
    if not consumers:
        return None
    figure, axis = plt.subplots(figsize=(8, 4.5))
    labels = [row["label"].replace(" catching up", "") for row in consumers]
    values = [row["throughput"] or 0 for row in consumers]
    for key in ("kafka_consume", "kafka_consume_commit_each", "pg_sequential_commit"):
        if key in ceilings:
            labels.append(key)
            values.append(ceilings[key]["rate"])
    bars = axis.barh(
        labels,
        values,
        color=["#4c72b0"] * len(consumers) + ["#999999"] * (len(labels) - len(consumers)),
    )
    axis.bar_label(bars, fmt="%.0f", fontsize=8, padding=3)
    axis.axvline(2000, color="red", linestyle=":", linewidth=1, label="2,000 events/s target")
    axis.set_xscale("log")
    axis.set_xlabel("events per second (log)")
    axis.set_title("Consumer drain rates vs raw ceilings")
    axis.legend(fontsize=8)
    return _save(plt, figure, stem, "-consumers")


def main(argv: list[str]) -> None:
    """Re-render the Markdown, plots and table of a results JSON file."""
    source = Path(argv[0])
    data = json.loads(source.read_text())
    stem = source.with_suffix("")
    stem.with_suffix(".md").write_text(markdown(data))
    write_plots(data, stem)
    print_table(data, Console())


if __name__ == "__main__":
    main(sys.argv[1:])

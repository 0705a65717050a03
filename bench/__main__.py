"""``python -m bench [--quick] [--scenarios a,b] [--profile]``: run the benchmark, write results."""

from __future__ import annotations

import os
import platform
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer
from rich.console import Console

from bench import report
from bench.config import SCENARIOS, sizes_for
from bench.context import RunContext, Tokens, fetchval, settle, setup_reference_data
from bench.monitor import ProcessSampler
from bench.results_model import RunResult, ScenarioResult
from bench.scenarios import SCENARIO_FUNCTIONS
from bench.stack import bench_stack, kafka_version
from bench.targets import judge
from bench.worker import load_generator, warm_up

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GIB = 1024**3

app = typer.Typer(add_completion=False, help=__doc__)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "ram_gib": round(psutil.virtual_memory().total / GIB, 1),
        "python": platform.python_version(),
        "kafka": kafka_version(),
        "os": platform.platform(),
        "load_before": _load(),
    }


def _chosen(scenarios: str) -> list[str]:
    chosen = [name.strip() for name in scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise typer.BadParameter(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    return [name for name in SCENARIOS if name in chosen]  # always in the run order


def run_scenarios(context: RunContext, names: list[str], run: RunResult) -> None:
    for name in names:
        context.console.rule(f"[bold]{name}")
        left = settle(context, context.sizes.settle_seconds)
        began = time.monotonic()
        try:
            scenario = SCENARIO_FUNCTIONS[name](context)
        except Exception as exc:  # one broken scenario must not lose the others' results
            context.console.print(f"[red]{name} failed:[/] {exc!r}")
            context.console.print(traceback.format_exc(), markup=False, highlight=False)
            scenario = ScenarioResult(name, name, error=repr(exc))
        if left:
            scenario.notes.append(f"started with earlier work still queued: {left}")
        scenario.seconds = time.monotonic() - began
        scenario.rss = context.sampler.window(began, time.monotonic())
        scenario.machine = context.sampler.machine(began, time.monotonic())
        scenario.cores = context.sampler.cores(began, time.monotonic())
        run.scenarios.append(scenario)
        context.console.print(f"  done in {scenario.seconds:.0f} s")


@app.command()
def main(
    quick: Annotated[
        bool, typer.Option(help="Small sizes: a smoke check in under 2 minutes.")
    ] = False,
    scenarios: Annotated[str, typer.Option(help="Comma-separated subset.")] = ",".join(SCENARIOS),
    profile: Annotated[bool, typer.Option(help="Record services with py-spy during load.")] = False,
    results_dir: Annotated[Path, typer.Option(help="Where results go.")] = RESULTS_DIR,
) -> None:
    names = _chosen(scenarios)
    sizes = sizes_for(quick)
    console = Console()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    stem = results_dir / stamp
    results_dir.mkdir(parents=True, exist_ok=True)
    run = RunResult(stamp=stamp, mode=sizes.mode, started_at=now.isoformat(timespec="seconds"))
    run.machine = machine()
    run.notes.append(report.CAVEAT)
    began = time.monotonic()
    with load_generator() as executor:
        loadgen_pid = executor.submit(warm_up).result(timeout=120)
        with (
            bench_stack(console) as stack,
            ProcessSampler(stack.pids, load_generator_pid=loadgen_pid) as sampler,
        ):
            run.machine["postgresql"] = fetchval(stack.dsn("postgres"), "SHOW server_version")
            run.machine["load_generator_pid"] = loadgen_pid
            context = RunContext(
                stack=stack,
                sizes=sizes,
                console=console,
                executor=executor,
                sampler=sampler,
                today=now.date(),
                tokens=Tokens.issue(),
                profile_dir=stem.with_name(stamp + "-profiles") if profile else None,
            )
            setup_reference_data(context)
            run_scenarios(context, names, run)
            run.ceilings = context.ceilings
    run.machine["load_after"] = _load()
    run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    run.notes.append(f"wall time {time.monotonic() - began:.0f} s including start and stop")
    run.targets = [outcome.as_dict() for outcome in judge(run.metrics())]
    data = run.as_dict()
    report.write_json(data, stem.with_suffix(".json"))
    stem.with_suffix(".md").write_text(report.markdown(data))
    try:
        plots = report.write_plots(data, stem)
    except ImportError:
        plots = []
        console.print("[yellow]matplotlib is not installed: no plots[/]")
    report.print_table(data, console)
    console.print(f"results: {stem.with_suffix('.json')}, {stem.with_suffix('.md')}")
    for plot in plots:
        console.print(f"plot: {plot}")


if __name__ == "__main__":
    app()

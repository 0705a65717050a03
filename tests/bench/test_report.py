"""Report writers: the Markdown table, the JSON record, the plots, the profile summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bench import report
from bench.monitor import ProcessSampler
from bench.profiling import summarize_collapsed
from bench.results_model import Ceiling, Row, RunResult, ScenarioResult
from bench.stats import summarize
from bench.targets import judge


def _run() -> dict[str, Any]:
    run = RunResult(stamp="2026-11-23T120000Z", mode="quick", started_at="2026-11-23T12:00:00")
    run.machine = {"cpu_model": "Test CPU", "cores": 2, "ram_gib": 8.0, "python": "3.11"}
    run.ceilings["pg_registration"] = Ceiling("pg_registration", "PG", 800.0, "tx/s")
    intake = ScenarioResult("intake", "Intake")
    for concurrency, rate, latency in ((8, 40.0, 0.2), (32, 60.0, 0.5), (64, 55.0, 1.2)):
        intake.rows.append(
            Row(
                f"concurrency {concurrency}",
                rate,
                "households/s",
                summarize([latency] * 50 + [latency * 2]),
                51,
                0,
                "pg_registration",
                rate / 800,
                note="registration CPU 16 ms/op",
            )
        )
    intake.metrics = {"intake.best_rate": 60.0, "intake.best_p99_ms": 990.0}
    recovery = ScenarioResult("recovery", "Recovery")
    recovery.rows.append(Row("referral catching up", 120.0, "events/s", ceiling="kafka_consume"))
    run.scenarios += [intake, recovery]
    run.targets = [outcome.as_dict() for outcome in judge(run.metrics())]
    return run.as_dict()


def test_markdown_has_the_targets_the_table_and_the_machine() -> None:
    text = report.markdown(_run())
    assert "Test CPU, 2 cores" in text
    assert "| Intake >= 500 households/s | 60 households/s | **missed** |" in text
    assert "| intake | concurrency 32 | 60 households/s |" in text
    assert "8% of pg_registration" in text
    assert "not measured" in text  # targets of scenarios that did not run
    assert report.CAVEAT in text


def test_json_round_trips(tmp_path: Path) -> None:
    data = _run()
    path = tmp_path / "run.json"
    report.write_json(data, path)
    assert json.loads(path.read_text())["scenarios"][0]["rows"][1]["latency"]["count"] == 51


def test_console_table_prints_every_row() -> None:
    console = Console(record=True, width=200)
    report.print_table(_run(), console)
    text = console.export_text()
    assert "concurrency 64" in text and "missed" in text


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = report.write_plots(_run(), tmp_path / "run")
    assert [p.name for p in written] == ["run-latency-throughput.png", "run-consumers.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_profile_summary_counts_inclusive_self_and_library_shares() -> None:
    collapsed = "\n".join(
        [
            "main (app.py:1);register (/work/main/services/registration/api.py:10);"
            "execute (/x/site-packages/asyncpg/connection.py:5) 6",
            "main (app.py:1);register (/work/main/services/registration/api.py:10) 2",
            "main (app.py:1);select (/usr/lib/python3.11/asyncio/base_events.py:9) 2",
        ]
    )
    summary = summarize_collapsed(collapsed)
    assert summary["samples"] == 10
    inclusive = dict(summary["inclusive"])
    assert inclusive["register (services/registration/api.py)"] == 0.8
    assert dict(summary["self"])["execute (asyncpg/connection.py)"] == 0.6
    categories = dict(summary["self_by_category"])
    assert categories == {"asyncpg": 0.6, "haven services": 0.2, "asyncio event loop": 0.2}


def test_sampler_reads_memory_and_cpu_of_a_process() -> None:
    with ProcessSampler({"me": os.getpid()}, interval=0.05) as sampler:
        began = time.monotonic()
        sum(i * i for i in range(300_000))  # a little CPU
        time.sleep(0.2)
        stats = sampler.window(began, time.monotonic())["me"]
        machine = sampler.machine(began, time.monotonic())
    assert stats.peak_mb >= stats.mean_mb > 10
    assert stats.cpu_seconds >= 0
    assert machine is not None and 0 <= machine.busy <= 1


def test_cores_count_a_child_process_after_it_ended() -> None:
    """A process the run started and that already ended (a PostgreSQL connection, py-spy)
    still counts: its CPU time moves to its parent's reaped-children times."""
    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    with ProcessSampler({}, interval=0.05) as sampler:
        began = time.monotonic()
        subprocess.run([sys.executable, "-c", burn], check=True)  # started, burned, reaped
        time.sleep(0.2)
        cores = sampler.cores(began, time.monotonic())
    assert cores is not None
    wall = time.monotonic() - began
    # the child's 0.4 CPU seconds (plus its start-up) over the window, as the bench's part
    assert cores["bench orchestrator"] >= 0.4 / wall
    assert cores["other"] >= 0


def test_markdown_says_where_the_cores_went() -> None:
    data = _run()
    data["scenarios"][0]["cores"] = {"registration": 0.47, "postgresql": 0.43, "other": 0.04}
    text = report.markdown(data)
    assert "| intake | 0 | registration 0.47, postgresql 0.43, other 0.04 | 0.94 |" in text

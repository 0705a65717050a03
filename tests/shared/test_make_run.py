"""`make run` brings everything up, every /readyz answers 200 with Kafka and PostgreSQL really
up, a crashed service is restarted while the rest keeps serving, and Ctrl-C leaves no process
behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from haven.devstack.processes import free_port, port_in_use
from shared.events.catalog import SERVICES
from tests.support import ROOT
from tests.support.tokens import auth_headers

START_TIMEOUT_SECONDS = 240
STOP_TIMEOUT_SECONDS = 90


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_make_run_starts_everything_survives_a_crash_and_ctrl_c_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in SERVICES}
    kafka_port, pg_port, prometheus_port = free_port(), free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("HAVEN_KAFKA_BOOTSTRAP", "DATABASE_URL")
    }
    env |= {f"HAVEN_{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()}
    env["HAVEN_INFRA"] = "local"  # the real processes `make run` starts on a machine like this
    state = tmp_path / "state"
    output = tmp_path / "run.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "haven.cli", "run",
                "--state-dir", str(state),
                "--kafka-port", str(kafka_port),
                "--pg-port", str(pg_port),
                "--prometheus-port", str(prometheus_port),
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while "Haven is running" not in output.read_text(errors="replace"):
            assert process.poll() is None, output.read_text(errors="replace")[-5000:]
            assert time.monotonic() < deadline, output.read_text(errors="replace")[-5000:]
            time.sleep(0.5)
        printed = output.read_text(errors="replace")
        for name, port in ports.items():
            assert f"http://127.0.0.1:{port}" in printed
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.status_code == 200, (name, ready.text)
            assert ready.json()["checks"] == {"postgresql": "ok", "kafka": "ok"}
            assert httpx.get(f"http://127.0.0.1:{port}/asyncapi.json", timeout=5).status_code == 200
        assert "haven token" in printed
        # The demo country programme was loaded through the services' APIs.
        admin = auth_headers("admin", sites=["*"], sub="t")
        sites = httpx.get(
            f"http://127.0.0.1:{ports['registration']}/v1/sites", headers=admin, timeout=5
        )
        assert "MDA-CHI" in {site["id"] for site in sites.json()["items"]}
        children = descendants(process.pid)
        assert len(children) >= 6  # four services, Kafka, PostgreSQL (and Prometheus)

        # One service crashes: it is restarted, the others keep serving, the console says so.
        referral = f"http://127.0.0.1:{ports['referral']}"
        [crashed] = [
            p
            for p in children
            if "services.referral" in " ".join(p.cmdline()) and p.ppid() == process.pid
        ]
        crashed.kill()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            registration = httpx.get(f"http://127.0.0.1:{ports['registration']}/readyz", timeout=5)
            assert registration.status_code == 200  # the rest of the stack keeps serving
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{referral}/readyz", timeout=2).status_code == 200 and (
                    "referral restarted" in output.read_text(errors="replace")
                ):
                    break
            assert process.poll() is None, output.read_text(errors="replace")[-5000:]
            assert time.monotonic() < deadline, output.read_text(errors="replace")[-5000:]
            time.sleep(0.5)
        assert "referral stopped unexpectedly" in output.read_text(errors="replace")
        children = descendants(process.pid)

        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        time.sleep(1)
        survivors = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not survivors, f"left behind: {survivors}"
        busy = [p for p in [*ports.values(), kafka_port, pg_port] if port_in_use(p)]
        assert not busy, f"ports still open: {busy}"
        assert "stopped" in output.read_text(errors="replace")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for child in descendants(process.pid):
            child.kill()

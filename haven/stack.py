"""The whole local system in one command: infrastructure, the four services, Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from haven.demo import load_demo_data
from haven.devstack.infra import InfraHandle, start_infra
from haven.devstack.processes import ManagedProcess, install_sigterm_handler, start_process
from haven.devstack.prometheus import LocalPrometheus, prometheus_available
from haven.devstack.supervisor import Supervisor
from shared.auth import AuthSettings, Role, issue_dev_token
from shared.events.catalog import CATALOG, SERVICES
from shared.kafka import ensure_topics
from shared.settings import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 120.0
ALERT_RULES_DIR = ROOT / "deploy" / "prometheus"
DEMO_TIMEZONE = "Europe/Chisinau"


@dataclass
class StackOptions:
    state_dir: Path = ROOT / ".haven"
    kafka_port: int | None = None
    pg_port: int | None = None
    prometheus_port: int = 9090
    load_demo: bool = True
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))


@dataclass
class RunningStack:
    infra: InfraHandle
    supervisor: Supervisor
    urls: dict[str, str]
    prometheus: LocalPrometheus | None

    @property
    def services(self) -> dict[str, ManagedProcess]:
        """Each service's current process (a new one after a restart)."""
        return {name: s.process for name, s in self.supervisor.services.items()}


def service_ports(defaults: Mapping[str, int]) -> dict[str, int]:
    """Each service's port: ``HAVEN_<SERVICE>_HTTP_PORT`` or the default."""
    return {
        name: int(os.environ.get(f"HAVEN_{name.upper()}_HTTP_PORT", defaults[name]))
        for name in SERVICES
    }


@contextlib.contextmanager
def running_stack(options: StackOptions, console: Console) -> Iterator[RunningStack]:
    """Start everything, yield while it runs, and stop it all on exit (even on Ctrl-C)."""
    state = options.state_dir
    cache = Path(os.environ.get("HAVEN_CACHE_DIR") or ROOT / ".haven" / "cache")
    with contextlib.ExitStack() as stack:
        console.print("starting Kafka and PostgreSQL …")
        infra = stack.enter_context(
            start_infra(
                state, kafka_port=options.kafka_port, pg_port=options.pg_port, cache_dir=cache
            )
        )
        asyncio.run(ensure_topics(infra.kafka_bootstrap, CATALOG))
        ports = service_ports(options.ports)
        env = {
            **os.environ,
            "HAVEN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "DATABASE_URL": infra.admin_database_url,
            "HAVEN_STATE_DIR": str(state),
            "PYTHONUNBUFFERED": "1",
            # The demo country programme is Moldova: local days and quiet hours follow it.
            "HAVEN_DISTRIBUTION_TIMEZONE": os.environ.get(
                "HAVEN_DISTRIBUTION_TIMEZONE", DEMO_TIMEZONE
            ),
            "HAVEN_NOTIFICATIONS_DEFAULT_TIMEZONE": os.environ.get(
                "HAVEN_NOTIFICATIONS_DEFAULT_TIMEZONE", DEMO_TIMEZONE
            ),
        }
        supervisor = Supervisor(lambda line: console.print(f"[yellow]supervisor:[/] {line}"))
        stack.callback(supervisor.stop_all)
        for name in SERVICES:
            env[f"HAVEN_{name.upper()}_HTTP_PORT"] = str(ports[name])
            infra.postgres_url(f"haven_{name}")
            supervisor.add(
                name,
                functools.partial(
                    start_process,
                    name,
                    [sys.executable, "-m", f"services.{name}"],
                    log_path=state / "logs" / f"{name}.log",
                    env=dict(env),
                    cwd=ROOT,
                ),
            )
        urls: dict[str, str] = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
        console.print("starting the services and applying migrations …")
        wait_until_ready(urls, {name: s.process for name, s in supervisor.services.items()})
        prometheus = None
        if prometheus_available():
            prometheus = LocalPrometheus(
                state,
                port=options.prometheus_port,
                scrape_targets={name: f"127.0.0.1:{ports[name]}" for name in SERVICES},
                rule_files=sorted(ALERT_RULES_DIR.glob("*.rules.yml")),
                scrape_interval="5s",
            )
            prometheus.start()
            stack.callback(prometheus.stop)
            prometheus.wait_ready()
        if options.load_demo:
            created = load_demo_data(urls, demo_loader_token())
            console.print(f"demo reference data: {created}")
        yield RunningStack(infra=infra, supervisor=supervisor, urls=urls, prometheus=prometheus)


def wait_until_ready(urls: Mapping[str, str], processes: Mapping[str, ManagedProcess]) -> None:
    """Wait for every service's /readyz; fail with its log tail if one dies or never gets ready."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = dict(urls)
    with httpx.Client(timeout=2) as client:
        while pending:
            for name, url in list(pending.items()):
                process = processes[name]
                if not process.is_running():
                    raise RuntimeError(f"{name} exited at start-up:\n{process.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url + "/readyz").status_code == 200:
                        del pending[name]
            if pending and time.monotonic() > deadline:
                names = ", ".join(pending)
                tails = "\n".join(processes[n].log_tail() for n in pending)
                raise RuntimeError(
                    f"not ready after {READY_TIMEOUT_SECONDS:.0f} s: {names}\n{tails}"
                )
            time.sleep(0.3)


def demo_loader_token() -> str:
    """Admin for reference data, warehouse operator for opening stock, on every site."""
    return issue_dev_token(
        AuthSettings(),
        sub="demo-loader",
        roles=[Role.ADMIN, Role.WAREHOUSE_OPERATOR],
        sites=["*"],
    )


def print_urls(running: RunningStack, console: Console) -> None:
    console.print("\n[bold green]Haven is running.[/]  Ctrl-C stops everything.\n")
    for name, url in running.urls.items():
        console.print(
            f"  {name:<14} {url}   docs {url}/docs   AsyncAPI {url}/asyncapi.json   "
            f"metrics {url}/metrics"
        )
    console.print(f"\n  Kafka          {running.infra.kafka_bootstrap}")
    console.print(f"  PostgreSQL     {running.infra.admin_database_url}")
    if running.prometheus:
        console.print(f"  Prometheus     {running.prometheus.url}")
    else:
        console.print("  Prometheus     not installed (apt-get install prometheus)")
    console.print(
        "\n  A token:  .venv/bin/haven token --role field_staff --site MDA-CHI\n"
        "  Roles: field_staff, warehouse_operator, caseworker, provider (--org ID), manager, "
        "admin\n"
    )


def run_until_interrupted(options: StackOptions) -> None:
    """``make run``: start everything, print the URLs, wait for Ctrl-C or SIGTERM."""
    console = Console()
    # Ctrl-C stops everything even when started as a background job, which inherits SIGINT
    # ignored (a shell without job control ignores it for `cmd &`), and Python keeps that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install_sigterm_handler()  # SIGTERM -> KeyboardInterrupt, so every process is stopped
    try:
        with running_stack(options, console) as running:
            print_urls(running, console)
            while True:  # a crashed service is restarted; the rest keeps serving
                running.supervisor.check()
                time.sleep(1)
    except KeyboardInterrupt:
        console.print("\nstopping …")
    console.print("stopped; data kept in .haven/ (make clean removes it)")

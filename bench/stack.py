"""The system under test: ``haven.stack.running_stack`` on free loopback ports, fresh state.

Kafka and PostgreSQL always run here as local processes (``HAVEN_INFRA=local``), never the
shared development servers, so the figures are this stack's alone and nothing else is touched.
State lives in ``.haven/bench/run-<pid>`` (one directory per run, so two runs on the same
checkout never share or wipe each other's servers); it is deleted when the run ends normally
and kept after a failure, for the services' logs in it (``logs/<service>.log``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from haven.devstack.kafka import KAFKA_VERSION
from haven.devstack.processes import ManagedProcess, free_port
from haven.stack import ROOT, StackOptions, running_stack
from shared.events.catalog import SERVICES
from shared.settings import DEFAULT_PORTS

BENCH_DIR = ROOT / ".haven" / "bench"

SERVICE_ENVIRONMENT = {
    "HAVEN_INFRA": "local",
    # Beneficiary SMS wait out quiet hours in the site's time zone; a run at night would
    # measure the clock, not the system.
    "HAVEN_NOTIFICATIONS_QUIET_HOURS_ENABLED": "false",
    # The load generator's desks share one subject each; a per-subject limit would measure
    # the limit, not the system.
    "HAVEN_RATE_LIMIT_PER_SUBJECT": "off",
}
"""Set for the whole run (and so inherited by the services); restored afterwards."""

_REMOVED_ENVIRONMENT = ("HAVEN_KAFKA_BOOTSTRAP", "DATABASE_URL")


@dataclass
class BenchStack:
    """Where the running system is, and the few controls the scenarios need."""

    urls: dict[str, str]
    kafka_bootstrap: str
    admin_database_url: str
    processes: dict[str, ManagedProcess]
    state_dir: Path

    @property
    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def database_url(self, database: str) -> str:
        """SQLAlchemy (``postgresql+asyncpg``) URL of a database on the bench server."""
        base, _, _ = self.admin_database_url.rpartition("/")
        return f"{base}/{database}"

    def dsn(self, database: str) -> str:
        """asyncpg DSN of a database on the bench server."""
        return self.database_url(database).replace("postgresql+asyncpg://", "postgresql://", 1)

    def service_database(self, service: str) -> str:
        return self.dsn(f"haven_{service}")

    def freeze(self, service: str) -> None:
        """SIGSTOP a service: to Kafka and PostgreSQL it is as good as gone (its consumer
        group session expires), yet it keeps its memory and resumes where it was."""
        self.processes[service].send_signal(signal.SIGSTOP)

    def thaw(self, service: str) -> None:
        self.processes[service].send_signal(signal.SIGCONT)

    def log_path(self, service: str) -> Path:
        return self.processes[service].log_path


@contextlib.contextmanager
def _environment(values: dict[str, str], removed: tuple[str, ...]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*values, *removed)}
    for name in removed:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def bench_stack(console: Console) -> Iterator[BenchStack]:
    """Start Kafka, PostgreSQL, Prometheus and the four services on free ports; stop on exit."""
    state_dir = BENCH_DIR / f"run-{os.getpid()}"
    if state_dir.exists():  # left by an earlier run that died with this pid
        shutil.rmtree(state_dir)
    ports = {name: free_port() for name in DEFAULT_PORTS}
    port_environment = {f"HAVEN_{name.upper()}_HTTP_PORT": str(p) for name, p in ports.items()}
    options = StackOptions(
        state_dir=state_dir,
        kafka_port=free_port(),
        pg_port=free_port(),
        prometheus_port=free_port(),
        load_demo=False,
        ports=ports,
    )
    environment = SERVICE_ENVIRONMENT | port_environment
    with (
        _environment(environment, _REMOVED_ENVIRONMENT),
        running_stack(options, console) as running,
    ):
        stack = BenchStack(
            urls=running.urls,
            kafka_bootstrap=running.infra.kafka_bootstrap,
            admin_database_url=running.infra.admin_database_url,
            processes={name: running.services[name] for name in SERVICES},
            state_dir=state_dir,
        )
        try:
            yield stack
        finally:
            for name in SERVICES:  # a frozen process would sit out SIGTERM until killed
                with contextlib.suppress(Exception):
                    stack.thaw(name)
    shutil.rmtree(state_dir, ignore_errors=True)  # a million-person database is gigabytes


def kafka_version() -> str:
    return KAFKA_VERSION

"""Keeping the local stack serving: a crashed service is restarted with back-off.

``make run`` starts every service under one supervisor. When a service exits on its own it
is started again after a delay that doubles on each crash in a row (1 s, 2 s, 4 s … at most
a minute) and resets once the service has run for a minute; the others, Kafka and
PostgreSQL keep running. What happens is printed on the console.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from haven.devstack.processes import ManagedProcess

INITIAL_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
STABLE_AFTER_SECONDS = 60.0


@dataclass
class Supervised:
    """One service: how to start it, its current process, and its crash history."""

    name: str
    start: Callable[[], ManagedProcess]
    process: ManagedProcess
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    crashes_in_a_row: int = 0
    restart_at: float | None = None
    last_exit_code: int | None = None

    @property
    def state(self) -> str:
        if self.restart_at is not None:
            return "restarting"
        return "running" if self.process.is_running() else "stopped"


class Supervisor:
    """Restarts crashed services; :meth:`check` is called about once a second."""

    def __init__(
        self,
        report: Callable[[str], None],
        *,
        initial_backoff: float = INITIAL_BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        stable_after: float = STABLE_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report = report
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.clock = clock
        self.services: dict[str, Supervised] = {}

    def add(self, name: str, start: Callable[[], ManagedProcess]) -> ManagedProcess:
        """Start ``name`` now and watch it from then on."""
        process = start()
        self.services[name] = Supervised(name, start, process, started_at=self.clock())
        return process

    def check(self) -> None:
        """Notice crashes and restart what is due."""
        now = self.clock()
        for service in self.services.values():
            if service.restart_at is None and not service.process.is_running():
                self._crashed(service, now)
            elif service.restart_at is not None and now >= service.restart_at:
                service.process = service.start()
                service.started_at, service.restart_at = now, None
                service.restarts += 1
                self.report(f"{service.name} restarted (restart {service.restarts})")
            elif now - service.started_at >= self.stable_after:
                service.crashes_in_a_row = 0

    def _crashed(self, service: Supervised, now: float) -> None:
        service.last_exit_code = service.process.returncode
        if now - service.started_at >= self.stable_after:
            service.crashes_in_a_row = 0
        delay = min(self.max_backoff, self.initial_backoff * 2**service.crashes_in_a_row)
        service.crashes_in_a_row += 1
        service.restart_at = now + delay
        self.report(
            f"{service.name} stopped unexpectedly (exit code {service.last_exit_code}); "
            f"restarting in {delay:.0f} s — the rest of the stack keeps serving; "
            f"log: {service.process.log_path}"
        )

    def stop_all(self) -> None:
        for service in self.services.values():
            service.process.stop()

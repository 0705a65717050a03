"""Memory and CPU of the service processes, the cores each part of the run used, and the
machine's CPU, sampled in a background thread during the whole run."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

MB = 1024 * 1024
DEFAULT_INTERVAL_SECONDS = 0.5
LOAD_GENERATOR = "load generator"
BENCH = "bench orchestrator"
OTHER = "other"
"""The machine's busy time that no process of this run accounts for (other work)."""


@dataclass(frozen=True)
class ProcessStats:
    """One process over a window: RSS peak and mean, CPU time used (user + system)."""

    peak_mb: float
    mean_mb: float
    cpu_seconds: float
    samples: int


@dataclass(frozen=True)
class MachineStats:
    """The whole machine over a window, as fractions of all cores' time."""

    busy: float
    iowait: float


@dataclass(frozen=True)
class _Sample:
    at: float
    name: str
    rss: int
    cpu: float


class ProcessSampler:
    """Samples RSS and CPU time of named processes every ``interval`` s until stopped, and the
    CPU time of every process this run started, by part (:meth:`cores`)."""

    def __init__(
        self,
        pids: Mapping[str, int],
        interval: float = DEFAULT_INTERVAL_SECONDS,
        *,
        load_generator_pid: int | None = None,
    ):
        self.interval = interval
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._service_pids = {pid: name for name, pid in pids.items()}
        self._load_generator_pid = load_generator_pid
        self._parts: dict[int, tuple[float, str]] = {}  # pid -> (create time, part)
        self._samples: list[_Sample] = []
        self._machine: list[tuple[float, Any]] = []  # (monotonic time, psutil scputimes)
        self._by_part: list[tuple[float, dict[str, float]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for name, process in self._processes.items():
                with contextlib.suppress(psutil.Error):
                    with process.oneshot():
                        times = process.cpu_times()
                        sample = _Sample(
                            now, name, process.memory_info().rss, times.user + times.system
                        )
                    with self._lock:
                        self._samples.append(sample)
            machine = psutil.cpu_times()
            by_part = self._cpu_by_part()
            with self._lock:
                self._machine.append((now, machine))
                self._by_part.append((now, by_part))
            self._stop.wait(self.interval)

    def _part(self, process: psutil.Process) -> str:
        """Which part of the run a process is: a service, PostgreSQL, Kafka, Prometheus, the
        load generator, or the bench itself (with anything else it started, such as py-spy)."""
        pid = process.pid
        if pid in self._service_pids:
            return self._service_pids[pid]
        if pid == self._load_generator_pid:
            return LOAD_GENERATOR
        command = " ".join(process.cmdline())
        for name in self._service_pids.values():
            if f"services.{name}" in command:
                return name
        if "kafka.Kafka" in command:
            return "kafka"
        if "postgres" in process.name() or "postgres" in command.split(" ", 1)[0]:
            return "postgresql"
        if "prometheus" in process.name():
            return "prometheus"
        return BENCH

    def _cpu_by_part(self) -> dict[str, float]:
        """CPU seconds used so far by each part: its live processes, plus the children they
        have already reaped (a PostgreSQL connection that ended takes its time to the
        postmaster's ``children_*`` times, so it is still counted)."""
        totals: dict[str, float] = {}
        try:
            root = psutil.Process(os.getpid())
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return totals
        for process in processes:
            with contextlib.suppress(psutil.Error):
                created = process.create_time()
                known = self._parts.get(process.pid)
                if known is None or known[0] != created:
                    known = self._parts[process.pid] = (created, self._part(process))
                times = process.cpu_times()
                used = times.user + times.system + times.children_user + times.children_system
                totals[known[1]] = totals.get(known[1], 0.0) + used
        return totals

    def cores(self, start: float, end: float) -> dict[str, float] | None:
        """Cores used on average by each part of the run between two readings, and by
        ``other`` (the machine's busy time no part accounts for); None with < 2 samples."""
        with self._lock:
            chosen = [(at, parts) for at, parts in self._by_part if start <= at <= end]
            machine = [times for at, times in self._machine if start <= at <= end]
        if len(chosen) < 2 or len(machine) < 2:
            return None
        (first_at, first), (last_at, last) = chosen[0], chosen[-1]
        wall = last_at - first_at
        if wall <= 0:
            return None
        used = {
            part: round(max(0.0, seconds - first.get(part, 0.0)) / wall, 3)
            for part, seconds in last.items()
        }
        busy = sum(machine[-1]) - sum(machine[0])
        busy -= (machine[-1].idle - machine[0].idle) + (machine[-1].iowait - machine[0].iowait)
        used[OTHER] = round(max(0.0, busy / wall - sum(used.values())), 3)
        return dict(sorted(used.items(), key=lambda item: -item[1]))

    def window(self, start: float, end: float) -> dict[str, ProcessStats]:
        """Each process between two ``time.monotonic()`` readings."""
        with self._lock:
            chosen = [s for s in self._samples if start <= s.at <= end]
        result: dict[str, ProcessStats] = {}
        for name in self._processes:
            mine = [s for s in chosen if s.name == name]
            if mine:
                result[name] = ProcessStats(
                    peak_mb=round(max(s.rss for s in mine) / MB, 1),
                    mean_mb=round(statistics.fmean(s.rss for s in mine) / MB, 1),
                    cpu_seconds=round(mine[-1].cpu - mine[0].cpu, 2),
                    samples=len(mine),
                )
        return result

    def machine(self, start: float, end: float) -> MachineStats | None:
        """How busy all cores were between two readings (None with fewer than 2 samples)."""
        with self._lock:
            chosen = [times for at, times in self._machine if start <= at <= end]
        if len(chosen) < 2:
            return None
        first, last = chosen[0], chosen[-1]
        total = sum(last) - sum(first)
        if total <= 0:
            return None
        idle = (last.idle - first.idle) + (last.iowait - first.iowait)
        return MachineStats(
            busy=round(1 - idle / total, 3), iowait=round((last.iowait - first.iowait) / total, 3)
        )

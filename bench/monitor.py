"""Memory and CPU of the service processes (and the machine's CPU), sampled in a background
thread during the whole run."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

MB = 1024 * 1024
DEFAULT_INTERVAL_SECONDS = 0.5


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
    """Samples RSS and CPU time of named processes every ``interval`` s until stopped."""

    def __init__(self, pids: Mapping[str, int], interval: float = DEFAULT_INTERVAL_SECONDS):
        self.interval = interval
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._samples: list[_Sample] = []
        self._machine: list[tuple[float, Any]] = []  # (monotonic time, psutil scputimes)
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
            with self._lock:
                self._machine.append((now, machine))
            self._stop.wait(self.interval)

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

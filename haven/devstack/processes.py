"""A tiny supervisor for local infrastructure processes.

Every child runs in its own session/process group (``start_new_session=True``) with stdout and
stderr appended to a log file, so a whole tree (e.g. the postmaster and its backends) can be
signalled at once. Children that are still running when the interpreter exits are SIGKILLed by
an ``atexit`` hook, and :func:`leftover_processes` lets tests check that nothing survived.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

__all__ = [
    "DEFAULT_STOP_TIMEOUT_S",
    "LOOPBACK",
    "PID_FILE_NAME",
    "ManagedProcess",
    "ProcessError",
    "free_port",
    "install_sigterm_handler",
    "kill_all",
    "kill_recorded",
    "leftover_processes",
    "log_tail",
    "port_in_use",
    "run_sync",
    "start_process",
    "wait_until",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

LOOPBACK = "127.0.0.1"
DEFAULT_STOP_TIMEOUT_S = 30.0
"""How long a graceful stop may take before the whole process group is SIGKILLed."""
_KILL_WAIT_S = 5.0
"""How long to wait for processes to disappear after SIGKILL."""
_LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 64 * 1024
_POLL_INTERVAL_S = 0.02
_CREATE_TIME_TOLERANCE_S = 0.01


class ProcessError(RuntimeError):
    """A local infrastructure process failed to start, become ready or stop."""


@dataclass(eq=False)
class ManagedProcess:
    """A child process running in its own process group, logging to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    pid_file: Path | None = None
    _descendants: list[psutil.Process] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int:
        """PID of the group leader (also the process group id)."""
        return self.popen.pid

    def is_running(self) -> bool:
        """True while the group leader has not exited."""
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the group leader, ``None`` while it runs."""
        return self.popen.poll()

    def _snapshot_descendants(self) -> None:
        """Remember the leader's descendants, so they can be killed after it is reaped."""
        with contextlib.suppress(psutil.Error):
            seen = {p.pid for p in self._descendants}
            for child in psutil.Process(self.pid).children(recursive=True):
                if child.pid not in seen:
                    self._descendants.append(child)

    def send_signal(self, sig: int) -> None:
        """Signal the group leader only (it is expected to take its children down)."""
        if self.is_running():
            self._snapshot_descendants()
            self.popen.send_signal(sig)

    def _kill_group(self) -> None:
        # Safe while the leader is unreaped: its pid, hence the pgid, cannot be reused yet.
        if self.popen.returncode is None:
            self._snapshot_descendants()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        for proc in self._descendants:
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil checks the create time, so a reused pid is left alone

    def stop(self, sig: int = signal.SIGTERM, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> int:
        """Send ``sig``, wait up to ``timeout`` s, then SIGKILL the whole group; return status."""
        self.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _log.warning(
                "%s (pid %d) ignored signal %d for %.0f s; killing its process group",
                self.name,
                self.pid,
                sig,
                timeout,
            )
        return self.kill()

    def kill(self) -> int:
        """SIGKILL the whole process group (simulates a crash); return the exit status."""
        self._kill_group()
        try:
            status = self.popen.wait(_KILL_WAIT_S)
        except subprocess.TimeoutExpired as exc:  # pragma: no cover - D-state processes
            raise ProcessError(f"{self.name} (pid {self.pid}) survived SIGKILL") from exc
        _wait_gone(self._descendants, _KILL_WAIT_S)
        self._descendants.clear()
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        _forget(self)
        return status

    def alive_processes(self) -> list[psutil.Process]:
        """The leader (if running) and any known descendants still alive."""
        alive: list[psutil.Process] = []
        if self.is_running():
            with contextlib.suppress(psutil.Error):
                alive.append(psutil.Process(self.pid))
            self._snapshot_descendants()
        alive.extend(p for p in self._descendants if _alive(p))
        return alive

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of this process's log."""
        return log_tail(self.log_path, lines)


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> None:
    # Orphans killed after their parent may stay zombies until PID 1 reaps them; a zombie
    # holds no resources, so it counts as gone (psutil.wait_procs would wait for the reap).
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL_S)


_registry: set[ManagedProcess] = set()
_registry_lock = threading.Lock()


def _remember(proc: ManagedProcess) -> None:
    with _registry_lock:
        _registry.add(proc)


def _forget(proc: ManagedProcess) -> None:
    with _registry_lock:
        _registry.discard(proc)


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
    pid_file: Path | None = None,
) -> ManagedProcess:
    """Start ``argv`` in a new session, appending stdout+stderr to ``log_path``.

    ``user``/``group`` (uids/gids) drop privileges in the child; only root may pass them.
    ``pid_file`` records the pid so :func:`kill_recorded` can clean up after a crashed parent.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(
            f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: "
            f"{' '.join(argv)}\n".encode()
        )
        log.flush()
        privileges: dict[str, Any] = {}
        if user is not None:
            privileges = {"user": user, "group": group, "extra_groups": []}
        try:
            popen = subprocess.Popen(  # noqa: S603 - argv is built by haven.devstack
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
                **privileges,
            )
        except FileNotFoundError as exc:
            raise ProcessError(f"cannot start {name}: {argv[0]} not found") from exc
    proc = ManagedProcess(
        name=name, argv=list(argv), log_path=log_path, popen=popen, pid_file=pid_file
    )
    _remember(proc)
    if pid_file is not None:
        with contextlib.suppress(psutil.Error):
            created = psutil.Process(popen.pid).create_time()
            pid_file.write_text(f"{popen.pid} {created!r}\n")
    _log.info("started %s (pid %d), log: %s", name, popen.pid, log_path)
    return proc


def kill_all() -> None:
    """SIGKILL every process group started by this module that is still running."""
    with _registry_lock:
        procs = list(_registry)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()


def leftover_processes(names: Collection[str] | None = None) -> list[psutil.Process]:
    """Processes started by this module (or their descendants) that are still alive,
    optionally only those started under one of ``names`` (e.g. ``{"kafka", "postgres"}``)."""
    with _registry_lock:
        procs = [p for p in _registry if names is None or p.name in names]
    return [p for proc in procs for p in proc.alive_processes()]


atexit.register(kill_all)

PID_FILE_NAME = "haven.pid"


def kill_recorded(root: Path) -> int:
    """SIGKILL the process groups recorded in ``root/**/haven.pid`` (left by a parent that
    died without cleaning up); a pid is only trusted if its create time still matches.
    Returns how many were killed."""
    killed = 0
    for pid_file in root.rglob(PID_FILE_NAME):
        with contextlib.suppress(ValueError, OSError, psutil.Error):
            pid_text, created_text = pid_file.read_text().split()
            proc = psutil.Process(int(pid_text))
            if abs(proc.create_time() - float(created_text)) < _CREATE_TIME_TOLERANCE_S:
                victims = [proc, *proc.children(recursive=True)]
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                for victim in victims:
                    with contextlib.suppress(psutil.Error):
                        victim.kill()
                _wait_gone(victims, _KILL_WAIT_S)
                killed += 1
        pid_file.unlink(missing_ok=True)
    return killed


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks and fixture teardown run.

    Only installed in the main thread and only when SIGTERM still has its default action.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"received signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True if something listens on ``host:port`` or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file (empty if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str
) -> T:
    """Poll ``check`` until it returns a truthy value; raise ProcessError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise ProcessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop.

    It runs on a private event loop in a worker thread, so the caller's loop (e.g. the
    pytest-asyncio session loop) is neither required nor disturbed; the caller blocks.
    """
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="devstack")
    try:
        return pool.submit(asyncio.run, coro).result()
    finally:
        pool.shutdown(wait=False)  # on Ctrl-C, don't wait for the coroutine to finish

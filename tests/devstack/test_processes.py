"""The process supervisor: process groups, stop escalation, leftovers, stale pid files."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import psutil
import pytest

from haven.devstack.processes import (
    LOOPBACK,
    ProcessError,
    free_port,
    kill_recorded,
    leftover_processes,
    port_in_use,
    start_process,
    wait_until,
)

# A shell that starts a grandchild and waits, so the group has more than one process.
TREE = ["sh", "-c", "sleep 300 & wait"]
# A shell that ignores SIGTERM, so stop() has to escalate to SIGKILL.
STUBBORN = ["sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"]


def family(pid: int) -> list[psutil.Process]:
    return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]


def wait_for_children(pid: int) -> None:
    wait_until(lambda: psutil.Process(pid).children(), timeout=5, what="the grandchild")


def test_stop_takes_down_the_whole_group(tmp_path: Path) -> None:
    proc = start_process("tree", TREE, log_path=tmp_path / "tree.log")
    wait_for_children(proc.pid)
    members = family(proc.pid)
    assert len(members) == 2

    proc.stop(timeout=5)

    assert not proc.is_running()
    assert not [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert proc not in leftover_processes()
    assert "starting tree" in (tmp_path / "tree.log").read_text()


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    proc = start_process("stubborn", STUBBORN, log_path=tmp_path / "stubborn.log")
    wait_for_children(proc.pid)
    started = time.monotonic()

    status = proc.stop(signal.SIGTERM, timeout=0.5)

    assert status == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert not proc.alive_processes()
    assert proc not in leftover_processes()


def test_kill_recorded_cleans_up_after_a_dead_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "svc" / "haven.pid"
    pid_file.parent.mkdir()
    proc = start_process("orphan", TREE, log_path=tmp_path / "o.log", pid_file=pid_file)
    wait_for_children(proc.pid)
    members = family(proc.pid)
    assert pid_file.read_text().split()[0] == str(proc.pid)

    assert kill_recorded(tmp_path) == 1

    proc.popen.wait(5)
    assert not pid_file.exists()
    assert not [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    proc.kill()  # reap and deregister


def test_missing_executable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="not found"):
        start_process("nope", ["/nonexistent/binary"], log_path=tmp_path / "x.log")


def test_free_port_and_port_in_use() -> None:
    port = free_port()
    assert not port_in_use(port)
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))
        sock.listen()
        assert port_in_use(port)

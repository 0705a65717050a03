"""The supervisor restarts a crashed service with back-off and leaves the others alone."""

from __future__ import annotations

import sys
from pathlib import Path

from haven.devstack.processes import ManagedProcess, start_process
from haven.devstack.supervisor import Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sleeper(tmp_path: Path, name: str) -> ManagedProcess:
    argv = [sys.executable, "-c", "import time; time.sleep(600)"]
    return start_process(name, argv, log_path=tmp_path / f"{name}.log")


def test_a_crashed_service_is_restarted_with_growing_back_off_and_others_keep_running(
    tmp_path: Path,
) -> None:
    clock, lines = Clock(), []
    supervisor = Supervisor(lines.append, clock=clock, initial_backoff=1, max_backoff=4)
    try:
        first = supervisor.add("referral", lambda: sleeper(tmp_path, "referral"))
        other = supervisor.add("registration", lambda: sleeper(tmp_path, "registration"))
        delays = []
        for _ in range(4):
            crashed = supervisor.services["referral"].process
            crashed.kill()
            supervisor.check()
            service = supervisor.services["referral"]
            assert service.state == "restarting"
            assert service.restart_at is not None
            delays.append(service.restart_at - clock.now)
            clock.now += delays[-1] - 0.01
            supervisor.check()
            assert service.state == "restarting"  # not before its time
            clock.now += 0.02
            supervisor.check()
            assert service.state == "running"
            assert service.process is not crashed
        assert delays == [1, 2, 4, 4]  # doubling, capped
        assert supervisor.services["referral"].restarts == 4
        assert other.is_running() and supervisor.services["registration"].restarts == 0
        assert first.returncode is not None
        assert any("referral stopped unexpectedly" in line for line in lines)
        assert any("referral restarted" in line for line in lines)

        clock.now += 61  # a minute of stable running forgives the crashes
        supervisor.check()
        supervisor.services["referral"].process.kill()
        supervisor.check()
        service = supervisor.services["referral"]
        assert service.restart_at is not None and service.restart_at - clock.now == 1
    finally:
        supervisor.stop_all()

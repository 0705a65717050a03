"""Session infrastructure for integration tests: one Kafka + one PostgreSQL per test run.

``infra`` comes from :func:`haven.devstack.infra.start_infra`: env endpoints, Docker, or local
processes (state in ``.haven/test-<pid>/``, Kafka jars cached in ``.haven/cache``). The state
dir (with logs/) is kept when tests failed or ``HAVEN_KEEP_TEST_STATE=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from haven.devstack.infra import InfraHandle, cleanup_stale_state_dirs, start_infra
from haven.devstack.processes import (
    free_port,
    install_sigterm_handler,
    kill_all,
    leftover_processes,
)

HAVEN_DIR = Path(__file__).resolve().parents[1] / ".haven"
INFRA_PROCESSES = {"kafka", "postgres"}


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[InfraHandle]:
    """Kafka + PostgreSQL for the whole session; torn down on exit, Ctrl-C and SIGTERM."""
    install_sigterm_handler()  # SIGTERM -> KeyboardInterrupt, so this teardown still runs
    cleanup_stale_state_dirs(HAVEN_DIR)  # processes left by a SIGKILLed session
    state_dir = HAVEN_DIR / f"test-{os.getpid()}"
    with start_infra(
        state_dir,
        kafka_port=free_port(),
        pg_port=free_port(),
        fast=True,
        cache_dir=Path(os.environ.get("HAVEN_CACHE_DIR") or HAVEN_DIR / "cache"),
    ) as handle:
        yield handle
    survivors = leftover_processes(INFRA_PROCESSES)
    kill_all()  # whatever tests started and left behind
    assert not survivors, f"infrastructure processes survived teardown: {survivors}"
    # Logs stay after failures (the next run removes them) or with HAVEN_KEEP_TEST_STATE=1.
    if not (os.environ.get("HAVEN_KEEP_TEST_STATE") or request.session.testsfailed):
        shutil.rmtree(state_dir, ignore_errors=True)

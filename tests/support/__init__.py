"""The test kit: databases, subprocesses, waiting and recorded SQL here; the fake clock, tokens,
topic reader, event factory and app starter in its modules (the older names re-exported)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import migrate
from tests.support.events import consumer_record
from tests.support.topics import (
    create_catalog_topics,
    erasures_topic,
    partitions_of,
    read_topic,
    read_topic_to_end,
    start_group_at_end,
    throwaway_topic,
)

ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def migrated_database(infra: Any, service: str, name: str | None = None) -> str:
    """A fresh database of the service's schema; returns its URL."""
    url: str = infra.postgres_url(name or unique(f"t_{service}"))
    await migrate(url, ROOT / "services" / service / "migrations")
    return url


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "",
) -> None:
    """Wait until ``check`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check.__name__}")


def start_python(
    module: str, *args: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run ``python -m module args`` in its own process group, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


__all__ = [
    "ROOT",
    "consumer_record",
    "create_catalog_topics",
    "erasures_topic",
    "eventually",
    "kill_group",
    "migrated_database",
    "partitions_of",
    "read_topic",
    "read_topic_to_end",
    "sent_statements",
    "start_group_at_end",
    "start_python",
    "throwaway_topic",
    "unique",
]

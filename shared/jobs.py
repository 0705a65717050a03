"""Background work of a service: one loop shape for every periodic job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from shared.telemetry import scrubbed

if TYPE_CHECKING:
    from shared.service import ServiceRuntime

log = logging.getLogger(__name__)

BackgroundJob = Callable[["ServiceRuntime[Any]", asyncio.Event], Coroutine[Any, Any, None]]
"""What a service definition lists as ``jobs``: runs until the event is set."""

Interval = float | Callable[[Any], float]
"""Seconds between rounds, or a function of the service's settings giving them."""


def periodic(
    every: Interval, job: Callable[[ServiceRuntime[Any]], Awaitable[Any]], *, name: str
) -> BackgroundJob:
    """A job that runs ``job(runtime)`` now and then every ``every`` seconds until the service
    stops. A failing round is logged (without its data) and the next round runs as planned:
    the database or Kafka may be away for a while."""

    async def loop(runtime: ServiceRuntime[Any], stop: asyncio.Event) -> None:
        interval = every(runtime.settings) if callable(every) else every
        while not stop.is_set():
            try:
                await job(runtime)
            except Exception as exc:
                log.warning("background job failed", extra={"job": name, "error": scrubbed(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    loop.__name__ = loop.__qualname__ = name
    return loop

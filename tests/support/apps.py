"""The one way a test starts a service app: built from its definition with the test's settings
and clock, its lifespan (migrations, relay, consumers, jobs) running, an HTTP client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from shared.clock import Clock, system_clock
from shared.service import ServiceDefinition, build_app


@asynccontextmanager
async def serving(
    app: FastAPI, *, base_url: str = "http://service"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client that calls it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client


@asynccontextmanager
async def running_app(
    definition: ServiceDefinition[Any],
    settings: Any = None,
    *,
    clock: Clock = system_clock,
    base_url: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The service of ``definition`` running in-process with ``settings`` (from the
    environment when None) and ``clock``; the client's base URL names the service."""
    app = build_app(definition, settings, clock=clock)
    async with serving(app, base_url=base_url or f"http://{definition.name}") as client:
        yield client


def app_of(client: httpx.AsyncClient) -> FastAPI:
    """The app behind a client of :func:`serving` (for its state and dependency overrides)."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app

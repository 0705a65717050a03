"""The one way a test runs a service app (built with ``build_app(definition, settings,
clock=...)`` or a service's ``create_app``): its lifespan (migrations, relay, consumers, jobs)
running, an HTTP client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


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

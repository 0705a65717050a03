"""All four services in one event loop, each with its own database and consumer group, talking
only through the real Kafka broker — for flows that cross services."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from shared.auth import Role
from shared.events.catalog import CATALOG
from shared.settings import ServiceSettings
from tests.support import create_catalog_topics, migrated_database, start_group_at_end, unique
from tests.support.apps import serving
from tests.support.tokens import auth_headers

SERVICES = ("registration", "distribution", "referral", "notifications")


token = partial(auth_headers, sites=("*",), sub="e2e")
"""Headers of an e2e user with these roles, at every site unless ``sites`` say otherwise."""


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _app(name: str, settings_env: dict[str, str]) -> FastAPI:
    """Build one service's app exactly as its ``__main__`` does, from the environment."""
    with environment(settings_env):
        service = importlib.import_module(f"services.{name}.service")
        app: FastAPI = service.create_app()
        return app


@dataclass
class Stack:
    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    databases: dict[str, str]
    bootstrap: str
    state: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, service: str) -> httpx.AsyncClient:
        return self.clients[service]


@contextlib.asynccontextmanager
async def running_stack(
    infra: Any, state: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    """Start the four services in-process; each consumes with a fresh consumer group."""
    bootstrap = infra.kafka_bootstrap
    await create_catalog_topics(bootstrap)
    run_id = unique("e2e")
    databases: dict[str, str] = {}
    apps: dict[str, FastAPI] = {}
    for name in SERVICES:
        databases[name] = await migrated_database(infra, name, f"{run_id}_{name}")
        env = {
            "HAVEN_KAFKA_BOOTSTRAP": bootstrap,
            f"HAVEN_{name.upper()}_DATABASE_URL": databases[name],
            f"HAVEN_{name.upper()}_CONSUMER_GROUP": f"{run_id}-{name}",
            f"HAVEN_{name.upper()}_RELAY_POLL_SECONDS": "0.2",
            "HAVEN_STATE_DIR": str(state),
            # Beneficiary SMS wait for the site's morning at night; e2e runs at any hour.
            "HAVEN_NOTIFICATIONS_QUIET_HOURS_ENABLED": "false",
            **(extra_env or {}),
        }
        apps[name] = _app(name, env)
        consumed = [t.name for t in CATALOG.consumed_by(name)]
        await start_group_at_end(bootstrap, f"{run_id}-{name}", consumed)
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        for name, app in apps.items():
            clients[name] = await stack.enter_async_context(serving(app, base_url=f"http://{name}"))
        yield Stack(
            clients=clients, apps=apps, databases=databases, bootstrap=bootstrap, state=state
        )


__all__ = ["SERVICES", "Role", "ServiceSettings", "Stack", "running_stack", "token"]

"""Every route and dependency of every service is ``async def``: FastAPI runs a plain ``def``
in a worker thread, a thread hand-off on every request (about 8 % of a request's CPU in the
distribution profile before they were converted)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.distribution.service import create_app as distribution_app
from services.notifications.service import create_app as notifications_app
from services.referral.service import create_app as referral_app
from services.registration.service import create_app as registration_app

APPS: dict[str, Callable[[], FastAPI]] = {
    "registration": registration_app,
    "distribution": distribution_app,
    "referral": referral_app,
    "notifications": notifications_app,
}


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The API routes, also those of included routers (kept as a router of their own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _runs_on_the_loop(call: Any) -> bool:
    """What FastAPI awaits on the event loop: a coroutine or async generator function, or an
    object whose ``__call__`` is one (a plain ``def`` goes to the thread pool)."""
    if not inspect.isroutine(call) and not inspect.isclass(call):
        call = type(call).__call__
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


@pytest.mark.parametrize("service", sorted(APPS))
def test_no_route_or_dependency_runs_in_a_worker_thread(service: str) -> None:
    app = APPS[service]()
    routes = list(_api_routes(app.routes))
    assert routes, "the service has routes"
    threaded = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', repr(call))}"
            for route in routes
            for call in _calls(route.dependant)
            if not _runs_on_the_loop(call)
        }
    )
    assert threaded == []

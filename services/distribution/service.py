"""The distribution service: what it is made of."""

from pathlib import Path

from fastapi import FastAPI

from services.distribution import api, handlers, jobs
from services.distribution.settings import DistributionSettings
from shared.clock import Clock, system_clock
from shared.service import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="distribution",
    title="Haven distribution",
    settings_class=DistributionSettings,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    handlers=handlers.register,
    jobs=jobs.JOBS,
)


def create_app(
    settings: DistributionSettings | None = None, *, clock: Clock = system_clock
) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_DISTRIBUTION_*``) unless given."""
    return build_app(DEFINITION, settings, clock=clock)

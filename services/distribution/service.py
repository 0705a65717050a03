"""The distribution service: what it is made of."""

from pathlib import Path

from fastapi import FastAPI

from services.distribution import api, handlers
from services.distribution.domain import metrics as distribution_metrics
from services.distribution.jobs import ExpiryWriteOffJob
from services.distribution.settings import DistributionSettings
from shared import metrics
from shared.service import ServiceDefinition, build_app

DEFINITION = ServiceDefinition(
    name="distribution",
    title="Haven distribution",
    settings_class=DistributionSettings,
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    handlers=lambda consumer, runtime: handlers.register(consumer),
    jobs=[ExpiryWriteOffJob(), metrics.refresh_job(*distribution_metrics.GAUGES)],
)


def create_app(settings: DistributionSettings | None = None) -> FastAPI:
    """The service's app; settings from the environment (``HAVEN_DISTRIBUTION_*``) unless given."""
    return build_app(DEFINITION, settings)

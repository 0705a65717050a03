"""The distribution service: what it is made of."""

from pathlib import Path

from services.distribution import api, handlers
from services.distribution.jobs import ExpiryWriteOffJob
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="distribution",
    title="Haven distribution",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    register_handlers=handlers.register,
    background=[ExpiryWriteOffJob()],
)

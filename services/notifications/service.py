"""The notifications service: what it is made of."""

from pathlib import Path

from services.notifications import api, handlers
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="notifications",
    title="Haven notifications",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    register_handlers=handlers.register,
)

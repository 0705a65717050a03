"""The registration service: what it is made of."""

from pathlib import Path

from services.registration import api, handlers
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="registration",
    title="Haven registration",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    register_handlers=handlers.register,
)

"""The referral service: what it is made of."""

from pathlib import Path

from services.referral import api, handlers
from shared.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="referral",
    title="Haven referral",
    migrations=Path(__file__).parent / "migrations",
    routers=[api.router],
    register_handlers=handlers.register,
)

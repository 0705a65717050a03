"""HTTP routes of the distribution service: parse, authorise, call the domain.

Roles: ``admin`` manages items, warehouses and shelters; ``warehouse_operator`` (of the
warehouse's or shelter's site) records receipts, transfers, adjustments, distributions and
shelter allocations; ``manager`` voids distributions and reads reports. A resource of a site
not in the caller's token answers 404. One module per resource; ``router`` holds them all.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.distribution.api import catalogue, distributions, reports, shelter, stock
from services.distribution.domain.policy import load_policies
from shared.service import runtime_of_app

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load and validate the entitlement policy at start-up: a bad file stops the service."""
    app.state.policies = load_policies(runtime_of_app(app).settings.policy_dir)
    log.info(
        "entitlement policy loaded",
        extra={"versions": [p.version for p in app.state.policies.policies]},
    )
    yield


router = APIRouter(prefix="/v1", tags=["distribution"], lifespan=lifespan)
for resource in (catalogue, stock, distributions, shelter, reports):
    router.include_router(resource.router)

__all__ = ["router"]

"""Routes of registration sites (reference data)."""

from __future__ import annotations

from fastapi import APIRouter

from services.registration.api.common import Admin
from services.registration.domain import sites
from services.registration.models import SiteCreate, SitePublic
from shared.auth import PrincipalDep
from shared.db import in_transaction
from shared.http import problem_responses
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["registration"])


@router.post(
    "/sites",
    status_code=201,
    response_model=SitePublic,
    responses=problem_responses(409),
    summary="Add a registration site (admin)",
)
async def create_site(
    body: SiteCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> SitePublic:
    return await in_transaction(
        session,
        lambda: sites.create_site(session=session, data=body, principal=principal, now=clock()),
    )


@router.get("/sites", response_model=list[SitePublic], summary="Registration sites")
async def list_sites(principal: PrincipalDep, session: SessionDep) -> list[SitePublic]:
    async with session.begin():
        return await sites.list_sites(session=session)

"""Routes of registration sites (reference data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.registration.api.common import DEFAULT_PAGE, Admin, PageLimit
from services.registration.domain import sites
from services.registration.models import SiteCreate, SitePage, SitePublic
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


@router.get(
    "/sites",
    response_model=SitePage,
    summary="Registration sites, by id (paged: limit and cursor)",
)
async def list_sites(
    principal: PrincipalDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> SitePage:
    async with session.begin():
        return await sites.list_sites(session=session, cursor=cursor, limit=limit)

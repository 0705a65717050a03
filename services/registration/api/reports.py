"""Routes of the aggregated reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.registration.api.common import Reader
from services.registration.domain import reports
from services.registration.domain.errors import InvalidParameter, SiteOutOfScope
from services.registration.domain.views import Actor
from services.registration.models import SITE_ID_PATTERN, IsoDate
from services.registration.settings import SettingsDep
from shared.http import problem_responses
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["registration"])


@router.get(
    "/reports/households.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(404)},
    summary="Households and people by site x displacement status x sex x age band (HXL CSV)",
)
async def households_report(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
    from_date: Annotated[IsoDate | None, Query(alias="from")] = None,
    to_date: Annotated[IsoDate | None, Query(alias="to")] = None,
) -> Response:
    if from_date and to_date and from_date > to_date:
        raise InvalidParameter("from", "must not be after 'to'")
    actor = Actor(principal)
    if site_id is not None and not actor.can_access(site_id):
        raise SiteOutOfScope(f"No site {site_id} among your sites.")
    async with session.begin():
        body = await reports.households_csv(
            session=session,
            actor=actor,
            site_id=site_id,
            from_date=from_date,
            to_date=to_date,
            today=clock().date(),
            min_cell=settings.report_min_cell,
        )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="households.csv"'},
    )

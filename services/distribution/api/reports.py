"""Routes of reports: distributions by day x site x category, as JSON or HXL CSV."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from services.distribution.api.dependencies import AdminOrManager, MomentDep
from services.distribution.domain import reports
from services.distribution.models import DistributionReport, IsoDate, SiteId
from services.distribution.settings import SettingsDep
from shared.http import problem_responses
from shared.service import SessionDep

CSV_MEDIA_TYPE = "text/csv"

router = APIRouter()


@router.get(
    "/reports/distributions",
    response_model=DistributionReport,
    responses={
        **problem_responses(404),
        200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}},
    },
)
async def distribution_report(
    request: Request,
    principal: AdminOrManager,
    session: SessionDep,
    moment: MomentDep,
    settings: SettingsDep,
    from_date: Annotated[IsoDate | None, Query(alias="from")] = None,
    to_date: Annotated[IsoDate | None, Query(alias="to")] = None,
    site_id: Annotated[SiteId | None, Query()] = None,
    format: Literal["json", "csv"] | None = None,
) -> Response:
    """By day x site x item category. CSV (with an HXL hashtag row) with ``format=csv`` or
    ``Accept: text/csv``."""
    end = to_date or moment.today
    start = from_date or end - timedelta(days=30)
    report = await reports.distribution_report(
        session=session,
        principal=principal,
        from_date=start,
        to_date=end,
        site_id=site_id,
        max_days=settings.report_max_days,
    )
    wants_csv = format == "csv" or (
        format is None and CSV_MEDIA_TYPE in request.headers.get("accept", "")
    )
    if wants_csv:
        filename = f"distributions_{start.isoformat()}_{end.isoformat()}.csv"
        return Response(
            reports.report_csv(report),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return JSONResponse(report.model_dump(mode="json", by_alias=True))

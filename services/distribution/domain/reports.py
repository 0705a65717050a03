"""Distribution reports: quantities by day x site x item category, as JSON or HXL CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.errors import InvalidPeriod, SiteOutOfScope
from services.distribution.domain.paging import site_scope
from services.distribution.models import (
    Distribution,
    DistributionLine,
    DistributionReport,
    DistributionStatus,
    ItemCategory,
    ReportRow,
)
from shared.auth import Principal

# Column titles and their HXL hashtags (https://hxlstandard.org): the second CSV row.
CSV_COLUMNS = (
    ("date", "#date"),
    ("site_id", "#loc+code"),
    ("category", "#item+type"),
    ("distributions", "#indicator+distributions+num"),
    ("households", "#reached+hh"),
    ("quantity", "#item+num"),
)


async def distribution_report(
    *,
    session: AsyncSession,
    principal: Principal,
    from_date: date,
    to_date: date,
    site_id: str | None,
    max_days: int,
) -> DistributionReport:
    """Recorded (not voided) distributions by day x site x category, within the caller's sites.

    ``households`` counts distinct households per row; erased households are not counted.
    """
    if to_date < from_date:
        raise InvalidPeriod("'to' is before 'from'.")
    if (to_date - from_date).days + 1 > max_days:
        raise InvalidPeriod(f"A report covers at most {max_days} days.", max_days=max_days)
    if site_id is not None and not principal.can_access_site(site_id):
        raise SiteOutOfScope(site_id)
    sites = [site_id] if site_id is not None else site_scope(principal)
    query = (
        sa.select(
            col(Distribution.distributed_on),
            col(Distribution.site_id),
            col(DistributionLine.category),
            sa.func.count(sa.distinct(col(Distribution.id))),
            sa.func.count(sa.distinct(col(Distribution.household_id))),
            sa.func.sum(col(DistributionLine.quantity)),
        )
        .join(DistributionLine, col(DistributionLine.distribution_id) == col(Distribution.id))
        .where(
            col(Distribution.status) == DistributionStatus.RECORDED,
            col(Distribution.distributed_on).between(from_date, to_date),
        )
        .group_by(
            col(Distribution.distributed_on),
            col(Distribution.site_id),
            col(DistributionLine.category),
        )
        .order_by(
            col(Distribution.distributed_on),
            col(Distribution.site_id),
            col(DistributionLine.category),
        )
    )
    if sites is not None:
        query = query.where(col(Distribution.site_id).in_(sites))
    rows = [
        ReportRow(
            day=day,
            site_id=site,
            category=ItemCategory(category),
            distributions=distributions,
            households=households,
            quantity=int(quantity),
        )
        # six columns: more than sqlmodel's typed select() takes, so plain SQLAlchemy Core
        for day, site, category, distributions, households, quantity in (
            await (await session.connection()).execute(query)
        ).all()
    ]
    return DistributionReport(
        from_date=from_date,
        to_date=to_date,
        site_ids=sorted({r.site_id for r in rows}) if sites is None else sites,
        rows=rows,
    )


def report_csv(report: DistributionReport) -> str:
    """CSV with a header row, then the HXL hashtag row, then one row per day x site x category."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title for title, _ in CSV_COLUMNS])
    writer.writerow([tag for _, tag in CSV_COLUMNS])
    for row in report.rows:
        writer.writerow(
            [
                row.day.isoformat(),
                row.site_id,
                row.category.value,
                row.distributions,
                row.households,
                row.quantity,
            ]
        )
    return buffer.getvalue()

"""Referral counts: how many referrals of each service type are in each status, sensitive ones
included, small cells suppressed. What managers see of the referrals they may not read."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain.common import Actor, record_audit
from services.referral.domain.referrals.access import visible_sites
from services.referral.domain.states import Status
from services.referral.domain.vocabulary import ServiceType
from services.referral.models import Referral, ReferralCount, ReferralCounts
from shared.auth import Principal


def suppress(count: int, min_cell: int) -> int | None:
    """A count from 1 to ``min_cell - 1`` is withheld (None): a small cell can point at a
    person. 0 stays 0."""
    return None if 0 < count < min_cell else count


async def counts(
    session: AsyncSession, *, principal: Principal, site_id: str | None, min_cell: int
) -> ReferralCounts:
    """Counts by service type and status over the caller's sites (``site_id``: that one only,
    nothing if it is not the caller's); the request is audited."""
    query = (
        select(Referral.service_type, Referral.status, sa.func.count())
        .group_by(col(Referral.service_type), col(Referral.status))
        .order_by(col(Referral.service_type), col(Referral.status))
    )
    sites = visible_sites(principal)
    if sites is not None:
        query = query.where(col(Referral.site_id).in_(list(sites)))
    if site_id is not None:
        query = query.where(Referral.site_id == site_id)
    rows = (await session.exec(query)).all()
    await record_audit(
        session,
        Actor(principal),
        action="referral.count",
        resource_type="referral",
        resource_id=None,
    )
    return ReferralCounts(
        min_cell=min_cell,
        items=[
            ReferralCount(
                service_type=ServiceType(service_type),
                status=Status(status),
                count=suppress(int(n), min_cell),
            )
            for service_type, status, n in rows
        ],
    )

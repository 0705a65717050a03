"""Distributions as staff read them: one, or a page within the caller's sites (audited)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.catalogue import SERVICE
from services.distribution.domain.errors import DistributionNotFound, DistributionOutOfScope
from services.distribution.domain.paging import site_scope
from services.distribution.models import (
    Distribution,
    DistributionLine,
    DistributionLinePublic,
    DistributionPublic,
    DistributionStatus,
    IssuedBatchPublic,
    ItemCategory,
    LedgerKind,
    Page,
    StockLedgerEntry,
    VoidReason,
)
from shared import audit
from shared.auth import Principal
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor


async def render(
    session: AsyncSession, distributions: list[Distribution]
) -> list[DistributionPublic]:
    """Distributions as they stand now, with their lines and the batches issued."""
    ids = [d.id for d in distributions]
    if not ids:
        return []
    lines = (
        await session.exec(
            select(DistributionLine)
            .where(col(DistributionLine.distribution_id).in_(ids))
            .order_by(col(DistributionLine.distribution_id), col(DistributionLine.line_no))
        )
    ).all()
    issues = (
        await session.exec(
            select(StockLedgerEntry)
            .where(
                col(StockLedgerEntry.distribution_id).in_(ids),
                col(StockLedgerEntry.kind) == LedgerKind.ISSUE,
            )
            .order_by(col(StockLedgerEntry.id))
        )
    ).all()
    lines_of: dict[UUID, list[DistributionLine]] = defaultdict(list)
    for line in lines:
        lines_of[line.distribution_id].append(line)
    issued: dict[tuple[UUID, int | None], list[IssuedBatchPublic]] = defaultdict(list)
    for entry in issues:
        assert entry.distribution_id is not None
        issued[(entry.distribution_id, entry.line_no)].append(
            IssuedBatchPublic(
                batch=entry.batch, expires_on=entry.expires_on, quantity=-entry.quantity
            )
        )
    return [
        DistributionPublic(
            id=d.id,
            household_id=d.household_id,
            warehouse_id=d.warehouse_id,
            site_id=d.site_id,
            client_ref=d.client_ref,
            status=DistributionStatus(d.status),
            policy_version=d.policy_version,
            distributed_at=d.distributed_at,
            distributed_on=d.distributed_on,
            recorded_by=d.recorded_by,
            lines=[
                DistributionLinePublic(
                    sku=line.sku,
                    category=ItemCategory(line.category),
                    quantity=line.quantity,
                    batch=line.requested_batch,
                    prescription_reference=line.prescription_reference,
                    issued=issued[(d.id, line.line_no)],
                )
                for line in lines_of[d.id]
            ],
            voided_at=d.voided_at,
            void_reason=VoidReason(d.void_reason) if d.void_reason else None,
        )
        for d in distributions
    ]


async def get_distribution(
    *, session: AsyncSession, principal: Principal, distribution_id: UUID
) -> DistributionPublic:
    distribution = await session.get(Distribution, distribution_id)
    if distribution is None:
        raise DistributionNotFound(distribution_id)
    if not principal.can_access_site(distribution.site_id):
        raise DistributionOutOfScope(distribution_id)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.read",
        resource_type="distribution",
        resource_id=str(distribution_id),
    )
    return (await render(session, [distribution]))[0]


async def list_distributions(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID | None,
    warehouse_id: UUID | None,
    from_date: date | None,
    to_date: date | None,
    cursor: str | None,
    limit: int,
) -> Page[DistributionPublic]:
    """Newest first, within the caller's sites; an audited read (household ids)."""
    query = select(Distribution)
    sites = site_scope(principal)
    if sites is not None:
        query = query.where(col(Distribution.site_id).in_(sites))
    if household_id is not None:
        query = query.where(col(Distribution.household_id) == household_id)
    if warehouse_id is not None:
        query = query.where(col(Distribution.warehouse_id) == warehouse_id)
    if from_date is not None:
        query = query.where(col(Distribution.distributed_on) >= from_date)
    if to_date is not None:
        query = query.where(col(Distribution.distributed_on) <= to_date)
    if cursor:
        last_at, last_id = decode_cursor(cursor, types=(str, str))
        try:
            after = (datetime.fromisoformat(last_at), UUID(last_id))
        except ValueError as exc:
            raise InvalidCursor("The cursor is not one this service returned.") from exc
        query = query.where(
            sa.tuple_(col(Distribution.distributed_at), col(Distribution.id)) < sa.tuple_(*after)
        )
    rows = (
        await session.exec(
            query.order_by(
                col(Distribution.distributed_at).desc(),
                col(Distribution.id).desc(),
            ).limit(limit + 1)
        )
    ).all()
    page = list(rows[:limit])
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distributions.read",
        resource_type="household" if household_id else "distribution",
        resource_id=str(household_id) if household_id else None,
    )
    next_cursor = (
        encode_cursor([page[-1].distributed_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return Page[DistributionPublic](items=await render(session, page), next_cursor=next_cursor)

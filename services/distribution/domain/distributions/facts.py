"""What a distribution is decided on, read under the household lock in one statement
(``queries.REQUEST_FACTS``): the warehouse's site, the client_ref, the items' categories, the
reorder levels, what the household received and which prescription references it holds."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution import queries
from services.distribution.domain import entitlements
from services.distribution.models import DistributionCreate, DistributionStatus
from shared.db import run


@dataclass(frozen=True)
class LockedHousehold:
    """The household row as a distribution reads it, locked."""

    household_id: UUID
    site_id: str
    household_size: int | None
    needs: list[str]
    vulnerabilities: list[str]
    status: str
    merged_into: UUID | None


@dataclass(frozen=True)
class WarehouseSite:
    id: UUID
    site_id: str


@dataclass(frozen=True)
class ItemCategoryOf:
    category: str


@dataclass(frozen=True)
class RequestFacts:
    """What ``queries.REQUEST_FACTS`` returns, decoded."""

    warehouse_site_id: str | None
    client_ref_taken: bool
    categories: dict[str, str]
    levels: dict[str, int]
    received: list[entitlements.Received]
    prescriptions: dict[str, bool]
    """The request's references found in the prescription register: whether each is this
    household's."""


async def request_facts(
    session: AsyncSession, data: DistributionCreate, skus: list[str]
) -> RequestFacts:
    """The facts, in one statement sent once the household is locked."""
    rows = (
        await run(
            session,
            queries.REQUEST_FACTS,
            {
                "client_ref": data.client_ref,
                "warehouse_id": data.warehouse_id,
                "household_id": data.household_id,
                "skus": skus,
                "references": sorted(
                    {ref for line in data.lines if (ref := line.prescription_reference)}
                ),
                "recorded": str(DistributionStatus.RECORDED),
            },
        )
    ).all()
    first = rows[0]
    return RequestFacts(
        warehouse_site_id=first.warehouse_site_id,
        client_ref_taken=first.client_ref_taken,
        categories=dict(zip(first.item_skus or (), first.item_categories or (), strict=True)),
        levels=dict(zip(first.level_skus or (), first.levels or (), strict=True)),
        prescriptions=dict(
            zip(first.prescribed_refs or (), first.prescribed_here or (), strict=True)
        ),
        received=[
            entitlements.Received(
                category=row.category,
                sku=row.sku,
                on=row.distributed_on,
                quantity=row.quantity,
                reference=row.prescription_reference,
            )
            for row in rows
            if row.sku is not None
        ],
    )

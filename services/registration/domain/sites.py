"""Registration sites: reference data, each with its own case-number sequence.

Case numbers are ``<SITE>-<6 digits>`` from a PostgreSQL SEQUENCE per site, created with
the site. A sequence never blocks a concurrent registration at the same site (a counter row
would serialise them); the price is gaps: a number taken by a transaction that rolls back is
not reused. Past 999999 the number simply grows a seventh digit.
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.schema import CreateSequence
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.domain.errors import SiteExists
from services.registration.models import SITE_ID_PATTERN, Site, SiteCreate, SitePage, SitePublic
from shared import audit
from shared.auth import Principal
from shared.db import run
from shared.pagination import decode_cursor, encode_cursor

SERVICE = "registration"
CASE_NUMBER_DIGITS = 6


def case_sequence_name(site_id: str) -> str:
    """The name of a site's case-number sequence (the id format makes it a safe name)."""
    if not re.fullmatch(SITE_ID_PATTERN, site_id):
        raise ValueError(f"not a site id: {site_id!r}")
    return f"case_number_{site_id}"


def case_sequence(site_id: str) -> str:
    """The quoted name of a site's case-number sequence, as ``to_regclass`` reads it."""
    return f'"{case_sequence_name(site_id)}"'


async def create_site(
    *, session: AsyncSession, data: SiteCreate, principal: Principal, now: datetime
) -> SitePublic:
    """Add a site and its case-number sequence; SiteExists when the id is taken."""
    inserted = await session.exec(
        insert(Site)
        .values(**data.model_dump(), created_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(col(Site.id))
    )
    if inserted.first() is None:
        raise SiteExists(f"Site {data.id} already exists.", site_id=data.id)
    connection = await session.connection()
    await connection.execute(
        CreateSequence(sa.Sequence(case_sequence_name(data.id)), if_not_exists=True)
    )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="site.create",
        resource_type="site",
        resource_id=data.id,
    )
    return SitePublic.model_validate(data.model_dump())


async def list_sites(*, session: AsyncSession, cursor: str | None, limit: int) -> SitePage:
    """Sites by id, a page at a time."""
    query = select(Site).order_by(col(Site.id)).limit(limit + 1)
    if cursor is not None:
        (after,) = decode_cursor(cursor, types=(str,))
        query = query.where(col(Site.id) > after)
    found = list((await session.exec(query)).all())
    page = found[:limit]
    return SitePage(
        items=[SitePublic.model_validate(site, from_attributes=True) for site in page],
        next_cursor=encode_cursor([page[-1].id]) if len(found) > limit else None,
    )


async def next_case_number(session: AsyncSession, site_id: str) -> str | None:
    """The site's next case number; None when there is no such site."""
    number = (
        await run(
            session,
            queries.NEXT_CASE_NUMBER,
            {"sequence": case_sequence(site_id), "site_id": site_id},
        )
    ).scalar_one_or_none()
    if number is None:
        return None
    return f"{site_id}-{int(number):0{CASE_NUMBER_DIGITS}d}"

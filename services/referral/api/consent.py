"""Routes of consent follow-up tasks."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.referral.api.common import (
    Cursor,
    Limit,
    Referrer,
)
from services.referral.domain import consent, referrals
from services.referral.domain.common import (
    DEFAULT_PAGE,
    Actor,
)
from services.referral.domain.vocabulary import ConsentTaskStatus
from services.referral.models import (
    ConsentTaskPage,
    ConsentTaskPublic,
)
from shared.pagination import decode_id_cursor, encode_id_cursor
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["referral"])


@router.get("/consent-tasks", response_model=ConsentTaskPage)
async def list_consent_tasks(
    principal: Referrer,
    session: SessionDep,
    status: ConsentTaskStatus | None = ConsentTaskStatus.OPEN,
    household_id: UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ConsentTaskPage:
    """Households to ask for referral-sharing consent (open tasks by default); tasks of
    sensitive service types only for protection focal points."""
    async with session.begin():
        rows = await consent.page(
            session,
            sites=referrals.visible_sites(principal),
            after=decode_id_cursor(cursor) if cursor else None,
            limit=limit,
            status=status,
            household_id=household_id,
            actor=Actor(principal),
            sensitive_visible=referrals.sees_every_sensitive(principal),
        )
    return ConsentTaskPage(
        items=[ConsentTaskPublic.model_validate(t, from_attributes=True) for t in rows],
        next_cursor=encode_id_cursor(rows[-1].id) if len(rows) == limit else None,
    )

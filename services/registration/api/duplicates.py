"""Routes of the duplicate review queue."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.registration.api.common import DEFAULT_PAGE, PageLimit, QueueReader, Supervisor
from services.registration.domain import reviews
from services.registration.domain.errors import OwnRegistration
from services.registration.domain.views import Actor
from services.registration.models import (
    SITE_ID_PATTERN,
    DuplicateReviewPage,
    DuplicateReviewPublic,
    ResolveRequest,
    ReviewStatus,
)
from shared.db import in_transaction
from shared.http import problem_responses
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["registration"])


@router.get(
    "/duplicates",
    response_model=DuplicateReviewPage,
    summary="The duplicate review queue of your sites, with scores and reasons (candidates at "
    "other sites only to supervisors)",
)
async def list_duplicates(
    principal: QueueReader,
    session: SessionDep,
    status: ReviewStatus = ReviewStatus.OPEN,
    site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> DuplicateReviewPage:
    async with session.begin():
        return await reviews.list_reviews(
            session=session,
            actor=Actor(principal),
            status=status,
            site_id=site_id,
            cursor=cursor,
            limit=limit,
        )


@router.post(
    "/duplicates/{review_id}/resolve",
    response_model=DuplicateReviewPublic,
    responses=problem_responses(403, 404, 409, 410),
    summary="Decide a review (supervisor, not who registered its households): merge into a "
    "candidate, or not a duplicate",
)
async def resolve_duplicate(
    review_id: UUID,
    body: ResolveRequest,
    principal: Supervisor,
    session: SessionDep,
    clock: ClockDep,
) -> DuplicateReviewPublic:
    actor = Actor(principal)
    try:
        return await in_transaction(
            session,
            lambda: reviews.resolve(
                session=session, review_id=review_id, decision=body, actor=actor, now=clock()
            ),
        )
    except OwnRegistration as refused:
        reason = refused.type_slug
        await in_transaction(
            session,
            lambda: reviews.record_refusal(
                session=session, review_id=review_id, actor=actor, reason=reason
            ),
        )
        raise

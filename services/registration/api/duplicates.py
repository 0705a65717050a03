"""Routes of the duplicate review queue."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.registration.api.common import DEFAULT_PAGE, PageLimit, Reader, Writer
from services.registration.domain import reviews
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
    summary="The duplicate review queue, with scores and reasons",
)
async def list_duplicates(
    principal: Reader,
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
    responses=problem_responses(404, 409, 410),
    summary="Decide a review: merge into another household, or not a duplicate",
)
async def resolve_duplicate(
    review_id: UUID,
    body: ResolveRequest,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> DuplicateReviewPublic:
    return await in_transaction(
        session,
        lambda: reviews.resolve(
            session=session, review_id=review_id, decision=body, actor=Actor(principal), now=clock()
        ),
    )

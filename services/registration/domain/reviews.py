"""The duplicate review queue: households held as pending_review until someone decides.

`merge` folds the household into another (status merged, `merged_into` set, its contact card
tombstoned, HouseholdsMerged so that downstream re-keys what it holds); `not_duplicate`
activates it. Deactivating or erasing a household closes its open review.

Need-to-know: a candidate outside the caller's sites is shown only as "a possible duplicate at
another site" (supervisors, who review cross-site pairs, see it in full). Four eyes: only a
supervisor decides, never one who registered a household of the review or opened it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain import changes
from services.registration.domain.dedup import Match
from services.registration.domain.errors import (
    HouseholdErased,
    HouseholdNotFound,
    InvalidMergeTarget,
    OwnRegistration,
    ReviewNotFound,
    ReviewNotOpen,
    ReviewOutOfScope,
)
from services.registration.domain.views import Actor
from services.registration.models import (
    DuplicateReview,
    DuplicateReviewPage,
    DuplicateReviewPublic,
    Household,
    PossibleDuplicate,
    ResolveRequest,
    ReviewResolution,
    ReviewStatus,
)
from shared import audit, outbox
from shared.events.registration import DuplicateReviewRequested, HouseholdsMerged, HouseholdUpdated
from shared.pagination import decode_id_cursor, encode_id_cursor
from shared.vocabulary import HouseholdStatus

MERGE_TARGET_STATUSES = frozenset(
    {HouseholdStatus.ACTIVE, HouseholdStatus.PENDING_REVIEW, HouseholdStatus.DEACTIVATED}
)


def candidates_json(matches: Sequence[Match]) -> list[dict[str, Any]]:
    return [
        {
            "household_id": str(m.household_id),
            "case_number": m.case_number,
            "site_id": m.site_id,
            "score": m.score,
            "reasons": list(m.reasons),
        }
        for m in matches
    ]


async def open_review(
    *,
    session: AsyncSession,
    household: Household,
    matches: Sequence[Match],
    actor: Actor,
    now: datetime,
) -> None:
    """Put the household in the queue (or add candidates to its open review).

    A new review is announced with DuplicateReviewRequested so that field supervisors hear of
    it; more candidates for a review already open are added silently.
    """
    existing = (
        await session.exec(
            select(DuplicateReview)
            .where(
                col(DuplicateReview.household_id) == household.id,
                col(DuplicateReview.status) == ReviewStatus.OPEN,
            )
            .with_for_update()
        )
    ).first()
    if existing is not None:
        known = {c["household_id"]: c for c in existing.candidates}
        for candidate in candidates_json(matches):
            previous = known.get(candidate["household_id"])
            if previous is None or previous["score"] < candidate["score"]:
                known[candidate["household_id"]] = candidate
        existing.candidates = sorted(known.values(), key=lambda c: -c["score"])
        existing.score = max(existing.score, *(m.score for m in matches))
        existing.reasons = sorted(set(existing.reasons).union(*(m.reasons for m in matches)))
        return
    review = new_review(household, matches, now, requested_by=actor.principal.sub)
    session.add(review)
    await session.flush()
    await announce_review(session, review, actor)


def new_review(
    household: Household, matches: Sequence[Match], now: datetime, *, requested_by: str
) -> DuplicateReview:
    """An open review of a household with these candidates (not yet written), opened by the
    change of ``requested_by``."""
    return DuplicateReview(
        id=changes.new_id(),
        household_id=household.id,
        site_id=household.site_id,
        status=ReviewStatus.OPEN,
        score=max(m.score for m in matches),
        reasons=sorted(set().union(*(m.reasons for m in matches))),
        candidates=candidates_json(matches),
        created_at=now,
        requested_by=requested_by,
    )


async def announce_review(session: AsyncSession, review: DuplicateReview, actor: Actor) -> None:
    """DuplicateReviewRequested for a review just written, so that field supervisors hear of
    it."""
    household_id = review.household_id
    await outbox.add_event(
        session,
        DuplicateReviewRequested(
            review_id=review.id,
            household_id=household_id,
            site_id=review.site_id,
            score=review.score,
            reasons=tuple(review.reasons),
        ),
        key=str(household_id),
        source=changes.SOURCE,
        actor=actor.principal.sub,
        subject=f"household/{household_id}",
    )


async def close_open_review(
    *, session: AsyncSession, household_id: UUID, resolution: ReviewResolution, now: datetime
) -> None:
    """The household left the queue another way (deactivated, erased)."""
    review = (
        await session.exec(
            select(DuplicateReview).where(
                col(DuplicateReview.household_id) == household_id,
                col(DuplicateReview.status) == ReviewStatus.OPEN,
            )
        )
    ).first()
    if review is not None:
        review.status = ReviewStatus.CLOSED
        review.resolution = resolution
        review.resolved_at = now


def visible_candidates(
    candidates: Sequence[Mapping[str, Any]], actor: Actor
) -> tuple[list[PossibleDuplicate], bool]:
    """The candidates ``actor`` sees in full, and whether there is any other (at another site):
    of that one nothing is said, neither site, case number, household nor score."""
    shown = [
        PossibleDuplicate.model_validate(c)
        for c in candidates
        if actor.sees_candidate_at(c["site_id"])
    ]
    return shown, len(shown) < len(candidates)


def review_public(review: DuplicateReview, case_number: str, actor: Actor) -> DuplicateReviewPublic:
    """A review as ``actor`` sees it: score and reasons only of the candidates shown."""
    shown, elsewhere = visible_candidates(review.candidates, actor)
    score: float | None = review.score
    reasons = list(review.reasons)
    if elsewhere:
        score = max((c.score for c in shown), default=None)
        reasons = sorted({reason for c in shown for reason in c.reasons})
    return DuplicateReviewPublic(
        id=review.id,
        household_id=review.household_id,
        case_number=case_number,
        site_id=review.site_id,
        status=ReviewStatus(review.status),
        score=score,
        reasons=reasons,
        candidates=shown,
        possible_duplicate_at_another_site=elsewhere,
        created_at=review.created_at,
        resolved_at=review.resolved_at,
        resolution=ReviewResolution(review.resolution) if review.resolution else None,
        merge_into=review.merge_into_id,
    )


async def list_reviews(
    *,
    session: AsyncSession,
    actor: Actor,
    status: ReviewStatus,
    site_id: str | None,
    cursor: str | None,
    limit: int,
) -> DuplicateReviewPage:
    """The queue, oldest first, limited to the caller's sites (the reviews of households at
    them; candidates elsewhere are masked for all but supervisors)."""
    query = (
        select(DuplicateReview, col(Household.case_number))
        .join(Household, col(Household.id) == col(DuplicateReview.household_id))
        .where(col(DuplicateReview.status) == status)
        .order_by(col(DuplicateReview.id))
        .limit(limit + 1)
    )
    if actor.scope is not None:
        query = query.where(col(DuplicateReview.site_id).in_(sorted(actor.scope)))
    if site_id is not None:
        query = query.where(col(DuplicateReview.site_id) == site_id)
    if cursor is not None:
        query = query.where(col(DuplicateReview.id) > decode_id_cursor(cursor))
    rows = list((await session.exec(query)).all())
    page = rows[:limit]
    return DuplicateReviewPage(
        items=[review_public(review, case_number, actor) for review, case_number in page],
        next_cursor=encode_id_cursor(page[-1][0].id) if len(rows) > limit else None,
    )


async def resolve(
    *,
    session: AsyncSession,
    review_id: UUID,
    decision: ResolveRequest,
    actor: Actor,
    now: datetime,
) -> DuplicateReviewPublic:
    """Decide an open review: merge into one of its candidates, or confirm it is not a
    duplicate. Four eyes: never by who registered a household of the review or opened it."""
    review = await _review_in_scope(session, review_id, actor)
    if decision.merge_into is not None:
        # Candidates are only ever added to an open review: checked before anything is locked.
        _check_merge_target(review, decision.merge_into)
    # Households first, in id order (as every other change locks them), then the review.
    household_ids = [review.household_id]
    if decision.merge_into is not None:
        household_ids.append(decision.merge_into)
    locked = await session.exec(
        select(col(Household.id))
        .where(col(Household.id).in_(household_ids))
        .order_by(col(Household.id))
        .with_for_update()
    )
    locked.all()
    review = (
        await session.exec(
            select(DuplicateReview)
            .where(col(DuplicateReview.id) == review_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    if review.status != ReviewStatus.OPEN:
        raise ReviewNotOpen(
            f"This review was already {review.status} ({review.resolution}).",
            resolution=review.resolution,
        )
    pair = household_ids if decision.merge_into else [review.household_id, *candidate_ids(review)]
    await _check_four_eyes(session, review, pair, actor)
    household = await changes.find_household(session, review.household_id, actor, for_update=True)
    if decision.action == "merge":
        assert decision.merge_into is not None
        await _merge(session, household, decision.merge_into, actor, now)
        review.resolution = ReviewResolution.MERGE
        review.merge_into_id = decision.merge_into
    else:
        if household.status == HouseholdStatus.PENDING_REVIEW:
            household.status = HouseholdStatus.ACTIVE
        changes.touch(household, now)
        await changes.announce(session, HouseholdUpdated, household, actor, now)
        review.resolution = ReviewResolution.NOT_DUPLICATE
    review.status = ReviewStatus.RESOLVED
    review.resolved_at = now
    review.resolved_by = actor.principal.sub
    await changes.record(
        session, actor, "duplicate.resolve", household.id, reason=review.resolution
    )
    await session.flush()
    return review_public(review, household.case_number, actor)


async def _review_in_scope(session: AsyncSession, review_id: UUID, actor: Actor) -> DuplicateReview:
    review = (
        await session.exec(select(DuplicateReview).where(col(DuplicateReview.id) == review_id))
    ).first()
    if review is None:
        raise ReviewNotFound(f"No duplicate review {review_id} among your sites.")
    if not actor.can_access(review.site_id):
        raise ReviewOutOfScope(f"No duplicate review {review_id} among your sites.")
    return review


def candidate_ids(review: DuplicateReview) -> list[UUID]:
    return [UUID(c["household_id"]) for c in review.candidates]


def _check_merge_target(review: DuplicateReview, target_id: UUID) -> None:
    if target_id == review.household_id:
        raise InvalidMergeTarget("A household cannot be merged into itself.")
    if target_id not in candidate_ids(review):
        raise InvalidMergeTarget(
            "merge_into must be one of the households this review found as candidates."
        )


async def _check_four_eyes(
    session: AsyncSession, review: DuplicateReview, household_ids: Sequence[UUID], actor: Actor
) -> None:
    """Refuse the person who registered one of these households or opened the review."""
    registrants = await session.exec(
        select(col(Household.registered_by)).where(col(Household.id).in_(household_ids))
    )
    involved = {*registrants.all(), review.requested_by}
    if actor.principal.sub in involved:
        raise OwnRegistration(
            "You registered a household of this review (or sent it to review): another "
            "supervisor must decide it."
        )


async def record_refusal(
    *, session: AsyncSession, review_id: UUID, actor: Actor, reason: str
) -> None:
    """Audit a refused decision on its own (the refused transaction was rolled back)."""
    household_id = (
        await session.exec(
            select(col(DuplicateReview.household_id)).where(col(DuplicateReview.id) == review_id)
        )
    ).one()
    await changes.record(
        session,
        actor,
        "duplicate.resolve",
        household_id,
        reason=reason,
        outcome=audit.Outcome.DENIED,
    )


async def _merge(
    session: AsyncSession, household: Household, target_id: UUID, actor: Actor, now: datetime
) -> None:
    try:
        # A candidate may be at another site: supervisors decide cross-site pairs.
        target = await changes.find_household(
            session, target_id, actor, for_update=True, candidate=True
        )
    except HouseholdNotFound:
        raise HouseholdNotFound(f"No household {target_id} to merge into.") from None
    except HouseholdErased:
        raise InvalidMergeTarget("That household was erased; merge into a live one.") from None
    if target.status not in MERGE_TARGET_STATUSES:
        raise InvalidMergeTarget(
            f"Household {target.case_number} is {target.status}; merge into a live household."
        )
    household.status = HouseholdStatus.MERGED
    household.merged_into_id = target.id
    changes.touch(household, now)
    await session.flush()
    await outbox.add_event(
        session,
        HouseholdsMerged(surviving_id=target.id, merged_id=household.id, site_id=household.site_id),
        key=str(household.id),
        source=changes.SOURCE,
        actor=actor.principal.sub,
        subject=f"household/{household.id}",
    )
    await changes.tombstone_contact(session, household.id)

"""Intake: registering a household with the duplicate check, once per Idempotency-Key."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.domain import changes, dedup, idempotency, reviews
from services.registration.domain.dedup import DedupPolicy
from services.registration.domain.errors import SiteOutOfScope, UnknownSite
from services.registration.domain.members import new_member, person_of
from services.registration.domain.sites import next_case_number
from services.registration.domain.views import Actor
from services.registration.models import (
    DuplicateReview,
    Household,
    HouseholdCreate,
    Member,
    MemberDocument,
    RegistrationResult,
)
from shared.db import run
from shared.events.registration import HouseholdRegistered
from shared.idempotency import Outcome, OutcomeKind, fingerprint
from shared.vocabulary import HouseholdStatus


def _row(instance: Household | Member | MemberDocument | DuplicateReview) -> dict[str, Any]:
    table: sa.Table = sa.inspect(type(instance)).local_table
    return {column.name: getattr(instance, column.key) for column in table.columns}


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


async def _insert_new(
    session: AsyncSession,
    household: Household,
    members: list[Member],
    documents: list[MemberDocument],
    response: RegistrationResult,
    claimed: idempotency.Claimed | None,
    review: DuplicateReview | None,
) -> None:
    """Insert a new household, its members, their documents and its duplicate review if it
    has one, and store the outcome under the request's Idempotency-Key if it has one, in ONE
    statement (``queries.INSERT_NEW_HOUSEHOLD``). Not through the ORM: the rows are never read
    back in this transaction, so the unit of work would be pure overhead."""
    await run(
        session,
        queries.INSERT_NEW_HOUSEHOLD,
        {
            "household": _json(_row(household)),
            "members": _json([_row(m) for m in members]),
            "documents": _json([_row(d) for d in documents]),
            "reviews": _json([_row(review)] if review else []),
            **idempotency.outcome_parameters(
                claimed, OutcomeKind.CREATED, _json(response.model_dump(mode="json"))
            ),
        },
    )


async def register(
    *,
    session: AsyncSession,
    data: HouseholdCreate,
    actor: Actor,
    now: datetime,
    policy: DedupPolicy,
    key: str | None,
    key_ttl: timedelta,
) -> Outcome[idempotency.Response]:
    """Register a household, once per Idempotency-Key ``key`` (of this caller, for
    ``key_ttl``): a re-sent request gets the first outcome again, replayed."""
    claimed = None
    if key is not None:
        replay = await idempotency.claim(
            session=session,
            principal_sub=actor.principal.sub,
            key=key,
            body_hash=fingerprint(data),
            now=now,
            ttl=key_ttl,
        )
        if replay is not None:
            return replay
        claimed = idempotency.Claimed(actor.principal.sub, key)
    result = await _register_new(
        session=session, data=data, actor=actor, now=now, policy=policy, claimed=claimed
    )
    return Outcome(OutcomeKind.CREATED, result.model_dump(mode="json"))


def _household(
    data: HouseholdCreate, household_id: UUID, case_number: str, now: datetime, *, pending: bool
) -> Household:
    return Household(
        id=household_id,
        case_number=case_number,
        site_id=data.site_id,
        admin1=data.location.admin1,
        admin2=data.location.admin2,
        settlement=data.location.settlement,
        displacement_status=data.displacement_status,
        arrival_date=data.arrival_date,
        preferred_language=data.preferred_language,
        phone=data.phone,
        consent_data_processing=data.consent.data_processing,
        consent_referral_sharing=data.consent.referral_sharing,
        consent_contact=data.consent.contact,
        consent_given_at=data.consent.given_at or now,
        needs=[n.model_dump(mode="json") for n in data.needs],
        status=HouseholdStatus.PENDING_REVIEW if pending else HouseholdStatus.ACTIVE,
        version=1,
        registered_at=now,
        updated_at=now,
    )


async def _register_new(
    *,
    session: AsyncSession,
    data: HouseholdCreate,
    actor: Actor,
    now: datetime,
    policy: DedupPolicy,
    claimed: idempotency.Claimed | None,
) -> RegistrationResult:
    """Register a new household; probable duplicates send it to review as pending_review. The
    outcome is stored under ``claimed`` in the same statement as the household."""
    if not actor.can_access(data.site_id):
        raise SiteOutOfScope(f"No registration site {data.site_id} among your sites.")
    case_number = await next_case_number(session, data.site_id)
    if case_number is None:
        raise UnknownSite(data.site_id)
    household_id = changes.new_id()
    built = [
        new_member(member, household_id, position, now)
        for position, member in enumerate(data.members, start=1)
    ]
    matches = await dedup.find_duplicates(
        session=session,
        people=[person_of(member, documents) for member, documents in built],
        phone=data.phone,
        threshold=policy.threshold,
        limit=policy.candidates_per_member,
    )
    household = _household(data, household_id, case_number, now, pending=bool(matches))
    household.registered_by = actor.principal.sub
    members = [member for member, _ in built]
    # Candidates outside the caller's sites are only said to exist (need-to-know).
    shown, elsewhere = reviews.visible_candidates(reviews.candidates_json(matches), actor)
    result = RegistrationResult(
        id=household.id,
        case_number=household.case_number,
        status=HouseholdStatus(household.status),
        possible_duplicates=shown,
        possible_duplicate_at_another_site=elsewhere,
    )
    documents = [d for _, member_documents in built for d in member_documents]
    # A new household has no review yet: its review is written with it, not looked for.
    review = (
        reviews.new_review(household, matches, now, requested_by=actor.principal.sub)
        if matches
        else None
    )
    await _insert_new(session, household, members, documents, result, claimed, review)
    await changes.record(session, actor, "household.register", household.id)
    await changes.announce(session, HouseholdRegistered, household, actor, now, members)
    if review is not None:
        await reviews.announce_review(session, review, actor)
    await changes.announce_contact(session, household, None, actor)
    return result

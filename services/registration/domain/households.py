"""Households: reads, search, changes of the household's own fields, needs, deactivation.

Every command runs in the caller's transaction and, in it: changes the household's rows,
bumps its version, writes one audit record and stages its events in the outbox.
"""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain import changes, reviews
from services.registration.domain.errors import IllegalTransition
from services.registration.domain.names import comparison_key, document_number_key
from services.registration.domain.profiles import ContactCard
from services.registration.domain.views import (
    Actor,
    HouseholdView,
    household_public,
    load_view,
    load_views,
)
from services.registration.models import (
    E164_PATTERN,
    DeactivationReason,
    Household,
    HouseholdPage,
    HouseholdPublic,
    HouseholdUpdate,
    Member,
    MemberDocument,
    NeedIn,
    ReviewResolution,
)
from shared import outbox
from shared.events.registration import HouseholdDeactivated, HouseholdUpdated, NeedsAssessed
from shared.pagination import decode_id_cursor, encode_id_cursor
from shared.vocabulary import HouseholdStatus

SEARCH_MIN_WORD = 3  # trigram index: shorter words cannot be looked up without a scan
DOCUMENT_MIN_LENGTH = 3


async def read(
    *, session: AsyncSession, household_id: UUID, actor: Actor
) -> tuple[HouseholdPublic, int]:
    """A household with its members (audited); returns it and its version for the ETag."""
    household = await changes.find_household(session, household_id, actor)
    await changes.record(session, actor, "household.read", household.id)
    view = await load_view(session, household)
    return household_public(view, sees_sensitive=actor.sees_sensitive), household.version


def search_condition(q: str) -> sa.ColumnElement[bool]:
    """Case number, phone, document number or a name in any script: a union of index look-ups
    (one OR across tables would make PostgreSQL scan every household)."""
    text = q.strip()
    matches: list[sa.Select[UUID]] = [
        sa.select(col(Household.id)).where(col(Household.case_number) == text.upper())
    ]
    phone = re.sub(r"[ \-().]", "", text)
    if re.fullmatch(E164_PATTERN, phone):
        matches.append(sa.select(col(Household.id)).where(col(Household.phone) == phone))
    number_key = document_number_key(text)
    if len(number_key) >= DOCUMENT_MIN_LENGTH:
        matches.append(
            sa.select(col(MemberDocument.household_id)).where(
                col(MemberDocument.number_key) == number_key
            )
        )
    words = [w for w in comparison_key(text).split() if len(w) >= SEARCH_MIN_WORD]
    if words:
        matches.append(
            sa.select(col(Member.household_id)).where(
                *(col(Member.name_key).like(f"%{word}%") for word in words)
            )
        )
    return col(Household.id).in_(sa.union(*matches))


async def search(
    *,
    session: AsyncSession,
    actor: Actor,
    q: str | None,
    site_id: str | None,
    status: HouseholdStatus | None,
    cursor: str | None,
    limit: int,
) -> HouseholdPage:
    """Households of the caller's sites, newest first; each one returned is audited."""
    query = select(Household).order_by(col(Household.id).desc()).limit(limit + 1)
    if actor.scope is not None:
        query = query.where(col(Household.site_id).in_(sorted(actor.scope)))
    if site_id is not None:
        query = query.where(col(Household.site_id) == site_id)
    # Erased households are tombstones without names: nothing to find or show.
    query = query.where(col(Household.status) != HouseholdStatus.ERASED)
    if status is not None:
        query = query.where(col(Household.status) == status)
    if cursor is not None:
        query = query.where(col(Household.id) < decode_id_cursor(cursor))
    if q:
        query = query.where(search_condition(q))
    found = list((await session.exec(query)).all())
    page = found[:limit]
    for household in page:
        await changes.record(session, actor, "household.search", household.id)
    views = await load_views(session, page)
    return HouseholdPage(
        items=[household_public(v, sees_sensitive=actor.sees_sensitive) for v in views],
        next_cursor=encode_id_cursor(page[-1].id) if len(found) > limit else None,
    )


# --- changes -------------------------------------------------------------------------------


async def update(
    *,
    session: AsyncSession,
    household_id: UUID,
    data: HouseholdUpdate,
    if_match: frozenset[int] | None,
    actor: Actor,
    now: datetime,
) -> HouseholdView:
    household = await changes.household_for_change(session, household_id, actor, if_match=if_match)
    contact_before = ContactCard.of(household)
    fields = data.model_fields_set
    if "location" in fields and data.location is not None:
        household.admin1 = data.location.admin1
        household.admin2 = data.location.admin2
        household.settlement = data.location.settlement
    if "displacement_status" in fields and data.displacement_status is not None:
        household.displacement_status = data.displacement_status
    if "arrival_date" in fields:
        household.arrival_date = data.arrival_date
    if "preferred_language" in fields and data.preferred_language is not None:
        household.preferred_language = data.preferred_language
    if "phone" in fields:
        household.phone = data.phone
    if data.consent is not None:
        consent = data.consent
        given = (consent.referral_sharing, consent.contact)
        if consent.referral_sharing is not None:
            household.consent_referral_sharing = consent.referral_sharing
        if consent.contact is not None:
            household.consent_contact = consent.contact
        if any(flag is not None for flag in given):
            household.consent_given_at = now
    changes.touch(household, now)
    await changes.record(session, actor, "household.update", household.id)
    await changes.announce(session, HouseholdUpdated, household, actor, now)
    await changes.announce_contact(session, household, contact_before, actor)
    return await load_view(session, household)


async def set_needs(
    *,
    session: AsyncSession,
    household_id: UUID,
    needs: list[NeedIn],
    if_match: frozenset[int] | None,
    actor: Actor,
    now: datetime,
) -> HouseholdView:
    household = await changes.household_for_change(session, household_id, actor, if_match=if_match)
    household.needs = [n.model_dump(mode="json") for n in needs]
    changes.touch(household, now)
    await changes.record(session, actor, "household.needs.assess", household.id)
    await changes.announce(session, NeedsAssessed, household, actor, now)
    return await load_view(session, household)


async def deactivate(
    *,
    session: AsyncSession,
    household_id: UUID,
    reason: DeactivationReason,
    if_match: frozenset[int] | None,
    actor: Actor,
    now: datetime,
) -> HouseholdView:
    household = await changes.find_household(session, household_id, actor, for_update=True)
    if if_match is not None:
        changes.check_version(household, if_match)
    if household.status not in changes.EDITABLE_STATUSES:
        raise IllegalTransition(
            f"Household {household.case_number} is {household.status}; "
            "only active or pending households can be deactivated."
        )
    household.status = HouseholdStatus.DEACTIVATED
    household.deactivation_reason = reason
    changes.touch(household, now)
    await reviews.close_open_review(
        session=session,
        household_id=household.id,
        resolution=ReviewResolution.HOUSEHOLD_DEACTIVATED,
        now=now,
    )
    await changes.record(session, actor, "household.deactivate", household.id, reason=reason)
    await session.flush()
    await outbox.add_event(
        session,
        HouseholdDeactivated(
            household_id=household.id,
            site_id=household.site_id,
            reason_code=reason,
            version=household.version,
        ),
        key=str(household.id),
        source=changes.SOURCE,
        actor=actor.principal.sub,
        subject=f"household/{household.id}",
    )
    return await load_view(session, household)

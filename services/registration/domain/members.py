"""Members of a household: building them with their keys, adding, changing and removing them.

Every command runs in the caller's transaction and, in it: changes the household's rows,
bumps its version, writes one audit record and stages its event in the outbox.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain import changes, dedup, reviews
from services.registration.domain.ages import birth_year
from services.registration.domain.dedup import DedupPolicy, Person
from services.registration.domain.errors import HeadRule, MemberNotFound
from services.registration.domain.names import document_number_key, name_keys
from services.registration.domain.views import Actor, HouseholdView, load_view
from services.registration.models import (
    DocumentIn,
    Member,
    MemberCreate,
    MemberDocument,
    MemberUpdate,
    Relationship,
)
from shared.events.registration import HouseholdUpdated, VulnerabilitiesFlagged
from shared.vocabulary import SENSITIVE_VULNERABILITIES, HouseholdStatus, Sex


def documents_of(
    member: Member, documents: list[DocumentIn], household_id: UUID
) -> list[MemberDocument]:
    return [
        MemberDocument(
            id=changes.new_id(),
            member_id=member.id,
            household_id=household_id,
            doc_type=document.type,
            number=document.number,
            number_key=document_number_key(document.number),
            issuing_country=document.issuing_country,
        )
        for document in documents
    ]


def set_keys(member: Member) -> None:
    """Recompute the comparison and blocking keys after the names or the age changed."""
    keys = name_keys(member.given_name, member.family_name, member.nationality)
    member.given_key = keys.given_key
    member.family_key = keys.family_key
    member.given_phonetic = keys.given_phonetic
    member.family_phonetic = keys.family_phonetic
    member.family_initial = keys.family_initial
    member.name_key = keys.full_key
    member.birth_year = birth_year(member)


def new_member(
    data: MemberCreate, household_id: UUID, position: int, now: datetime
) -> tuple[Member, list[MemberDocument]]:
    member = Member(
        id=changes.new_id(),
        household_id=household_id,
        position=position,
        given_name=data.given_name,
        family_name=data.family_name,
        sex=data.sex,
        date_of_birth=data.date_of_birth,
        estimated_age=data.estimated_age,
        estimated_on=now.date() if data.estimated_age is not None else None,
        relationship=data.relationship,
        nationality=data.nationality,
        vulnerabilities=[v.value for v in data.vulnerabilities],
        given_key="",
        family_key="",
        given_phonetic="",
        family_phonetic="",
        family_initial="",
        birth_year=0,
        name_key="",
    )
    set_keys(member)
    return member, documents_of(member, data.documents, household_id)


def person_of(member: Member, documents: list[MemberDocument]) -> Person:
    keys = name_keys(member.given_name, member.family_name, member.nationality)
    return Person(
        keys=keys,
        sex=Sex(member.sex),
        date_of_birth=member.date_of_birth,
        birth_year=member.birth_year,
        estimated=member.estimated_age is not None,
        documents=tuple((d.doc_type, d.issuing_country, d.number_key) for d in documents),
    )


def _vulnerability_sets(members: list[Member]) -> dict[UUID, frozenset[str]]:
    return {m.id: frozenset(m.vulnerabilities) for m in members}


def _flagged(before: dict[UUID, frozenset[str]], after: list[Member]) -> bool:
    """True when some member gained a vulnerability (VulnerabilitiesFlagged, not Updated)."""
    return any(frozenset(m.vulnerabilities) - before.get(m.id, frozenset()) for m in after)


async def members_of(session: AsyncSession, household_id: UUID) -> list[Member]:
    result = await session.exec(
        select(Member)
        .where(col(Member.household_id) == household_id)
        .order_by(col(Member.position))
    )
    return list(result.all())


async def add_member(
    *,
    session: AsyncSession,
    household_id: UUID,
    data: MemberCreate,
    if_match: frozenset[int] | None,
    actor: Actor,
    now: datetime,
    policy: DedupPolicy,
) -> tuple[HouseholdView, UUID]:
    """Add a member; a probable duplicate elsewhere sends the household to review."""
    household = await changes.household_for_change(session, household_id, actor, if_match=if_match)
    members = await members_of(session, household.id)
    if data.relationship == Relationship.HEAD:
        raise HeadRule(
            "The household already has a head. Add this person with their relationship to "
            "the head, then make them the head with PATCH (former_head_relationship)."
        )
    before = _vulnerability_sets(members)
    member, documents = new_member(data, household.id, max(m.position for m in members) + 1, now)
    session.add(member)
    await session.flush()
    session.add_all(documents)
    matches = await dedup.find_duplicates(
        session=session,
        people=[person_of(member, documents)],
        phone=household.phone,
        threshold=policy.threshold,
        limit=policy.candidates_per_member,
        exclude_household=household.id,
    )
    if matches and household.status == HouseholdStatus.ACTIVE:
        household.status = HouseholdStatus.PENDING_REVIEW
    changes.touch(household, now)
    members.append(member)
    await changes.record(session, actor, "household.member.add", household.id)
    event = VulnerabilitiesFlagged if _flagged(before, members) else HouseholdUpdated
    await changes.announce(session, event, household, actor, now, members)
    if matches:
        await reviews.open_review(
            session=session, household=household, matches=matches, actor=actor, now=now
        )
    return await load_view(session, household), member.id


def _find_member(members: list[Member], member_id: UUID) -> Member:
    for member in members:
        if member.id == member_id:
            return member
    raise MemberNotFound(f"No member {member_id} in this household.")


async def update_member(
    *,
    session: AsyncSession,
    household_id: UUID,
    member_id: UUID,
    data: MemberUpdate,
    if_match: frozenset[int] | None,
    actor: Actor,
    now: datetime,
) -> HouseholdView:
    """Change a member. Sensitive vulnerabilities the caller cannot see are kept as they are."""
    household = await changes.household_for_change(session, household_id, actor, if_match=if_match)
    members = await members_of(session, household.id)
    member = _find_member(members, member_id)
    before = _vulnerability_sets(members)
    fields = data.model_fields_set
    await _change_head(session, members, member, data)
    for name in ("given_name", "sex", "nationality"):
        value = getattr(data, name)
        if name in fields and value is not None:
            setattr(member, name, value)
    if "family_name" in fields:
        member.family_name = data.family_name
    if data.date_of_birth is not None:
        member.date_of_birth, member.estimated_age, member.estimated_on = (
            data.date_of_birth,
            None,
            None,
        )
    elif data.estimated_age is not None:
        member.date_of_birth, member.estimated_age, member.estimated_on = (
            None,
            data.estimated_age,
            now.date(),
        )
    if data.vulnerabilities is not None:
        wanted = {v.value for v in data.vulnerabilities}
        if not actor.sees_sensitive:
            hidden = set(member.vulnerabilities) & {v.value for v in SENSITIVE_VULNERABILITIES}
            wanted |= hidden
        member.vulnerabilities = sorted(wanted)
    if data.documents is not None:
        await session.exec(
            sa.delete(MemberDocument).where(col(MemberDocument.member_id) == member.id)
        )
        session.add_all(documents_of(member, data.documents, household.id))
    set_keys(member)
    changes.touch(household, now)
    await changes.record(session, actor, "household.member.update", household.id)
    event = VulnerabilitiesFlagged if _flagged(before, members) else HouseholdUpdated
    await changes.announce(session, event, household, actor, now, members)
    return await load_view(session, household)


async def _change_head(
    session: AsyncSession, members: list[Member], member: Member, data: MemberUpdate
) -> None:
    """Keep exactly one head: a new head needs the current head's new relationship."""
    if data.relationship is None or data.relationship == member.relationship:
        return
    if member.relationship == Relationship.HEAD:
        raise HeadRule(
            "This member is the head. Make another member the head instead "
            "(PATCH them with relationship 'head' and former_head_relationship)."
        )
    if data.relationship == Relationship.HEAD:
        if data.former_head_relationship is None:
            raise HeadRule(
                "The household already has a head: say what the current head becomes "
                "with former_head_relationship."
            )
        head = next(m for m in members if m.relationship == Relationship.HEAD)
        head.relationship = data.former_head_relationship
        await session.flush()  # the one-head index allows no moment with two heads
    member.relationship = data.relationship


async def remove_member(
    *,
    session: AsyncSession,
    household_id: UUID,
    member_id: UUID,
    if_match: frozenset[int] | None,
    actor: Actor,
    now: datetime,
) -> HouseholdView:
    household = await changes.household_for_change(session, household_id, actor, if_match=if_match)
    members = await members_of(session, household.id)
    member = _find_member(members, member_id)
    if member.relationship == Relationship.HEAD:
        raise HeadRule("The head cannot be removed. Make another member the head first.")
    await session.delete(member)
    members.remove(member)
    changes.touch(household, now)
    await changes.record(session, actor, "household.member.remove", household.id)
    await changes.announce(session, HouseholdUpdated, household, actor, now, members)
    return await load_view(session, household)

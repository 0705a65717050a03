"""Households: intake with the duplicate check, reads, changes, deactivation and erasure.

Every command runs in the caller's transaction and, in it: changes the household's rows,
bumps its version, writes one audit record and stages its events in the outbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain import changes, dedup, idempotency, reviews
from services.registration.domain.ages import birth_year
from services.registration.domain.dedup import Match, Person
from services.registration.domain.errors import (
    HeadRule,
    IllegalTransition,
    MemberNotFound,
    SiteOutOfScope,
    UnknownSite,
)
from services.registration.domain.names import comparison_key, document_number_key, name_keys
from services.registration.domain.profiles import ContactCard
from services.registration.domain.sites import next_case_number
from services.registration.domain.views import (
    Actor,
    HouseholdView,
    household_public,
    load_views,
)
from services.registration.models import (
    E164_PATTERN,
    DeactivationReason,
    DocumentIn,
    DuplicateReview,
    Household,
    HouseholdCreate,
    HouseholdPage,
    HouseholdPublic,
    HouseholdUpdate,
    Member,
    MemberCreate,
    MemberDocument,
    MemberUpdate,
    NeedIn,
    PossibleDuplicate,
    RegistrationResult,
    Relationship,
    ReviewResolution,
)
from shared import outbox
from shared.events.catalog import CONTACTS
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdRegistered,
    HouseholdUpdated,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)
from shared.outbox import outbox_table
from shared.pagination import decode_id_cursor, encode_id_cursor
from shared.vocabulary import SENSITIVE_VULNERABILITIES, HouseholdStatus, Sex

SEARCH_MIN_WORD = 3  # trigram index: shorter words cannot be looked up without a scan
DOCUMENT_MIN_LENGTH = 3
PERSONAL_FIELDS = (
    "admin1",
    "admin2",
    "settlement",
    "displacement_status",
    "arrival_date",
    "preferred_language",
    "phone",
    "consent_data_processing",
    "consent_referral_sharing",
    "consent_contact",
    "consent_given_at",
    "deactivation_reason",
)


@dataclass(frozen=True)
class DedupPolicy:
    threshold: float
    candidates_per_member: int


# --- members -------------------------------------------------------------------------------


def _documents(
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


def _set_keys(member: Member) -> None:
    """Recompute the comparison and blocking keys after the names or the age changed."""
    keys = name_keys(member.given_name, member.family_name, member.nationality)
    member.given_key = keys.given_key
    member.family_key = keys.family_key
    member.given_phonetic = keys.given_phonetic
    member.family_phonetic = keys.family_phonetic
    member.family_initial = keys.family_initial
    member.name_key = keys.full_key
    member.birth_year = birth_year(member)


def _new_member(
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
    _set_keys(member)
    return member, _documents(member, data.documents, household_id)


def _person(member: Member, documents: list[MemberDocument]) -> Person:
    keys = name_keys(member.given_name, member.family_name, member.nationality)
    return Person(
        keys=keys,
        sex=Sex(member.sex),
        date_of_birth=member.date_of_birth,
        birth_year=member.birth_year,
        estimated=member.estimated_age is not None,
        documents=tuple((d.doc_type, d.issuing_country, d.number_key) for d in documents),
    )


def _possible_duplicates(matches: list[Match]) -> list[PossibleDuplicate]:
    return [
        PossibleDuplicate(
            household_id=m.household_id,
            case_number=m.case_number,
            site_id=m.site_id,
            score=m.score,
            reasons=list(m.reasons),
        )
        for m in matches
    ]


def _vulnerability_sets(members: list[Member]) -> dict[UUID, frozenset[str]]:
    return {m.id: frozenset(m.vulnerabilities) for m in members}


def _flagged(before: dict[UUID, frozenset[str]], after: list[Member]) -> bool:
    """True when some member gained a vulnerability (VulnerabilitiesFlagged, not Updated)."""
    return any(frozenset(m.vulnerabilities) - before.get(m.id, frozenset()) for m in after)


# --- intake --------------------------------------------------------------------------------


def _row(instance: Household | Member | MemberDocument | DuplicateReview) -> dict[str, Any]:
    table: sa.Table = sa.inspect(type(instance)).local_table
    return {column.name: getattr(instance, column.key) for column in table.columns}


# The rows travel as JSON and PostgreSQL turns them into table rows, so the statement is the
# same whatever the number of members and documents: prepared once per connection, never
# compiled again (a multi-row VALUES would be compiled anew for every request).
_INSERT_NEW_HOUSEHOLD = f"""
WITH new_household AS (
    INSERT INTO household SELECT * FROM jsonb_populate_record(NULL::household, $1::jsonb)
), new_members AS (
    INSERT INTO household_member
    SELECT * FROM jsonb_populate_recordset(NULL::household_member, $2::jsonb)
), stored_response AS ({idempotency.STORE_RESPONSE_CTE}
), new_review AS (
    INSERT INTO duplicate_review
    SELECT * FROM jsonb_populate_recordset(NULL::duplicate_review, $8::jsonb)
)
INSERT INTO member_document
SELECT * FROM jsonb_populate_recordset(NULL::member_document, $3::jsonb)
"""  # noqa: S608 (constant fragments only)


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
    has one, and store the response under the request's Idempotency-Key if it has one, in ONE
    statement (data-modifying CTEs; the foreign keys are checked at its end). Not through the
    ORM: the rows are never read back in this transaction, so the unit of work would be pure
    overhead."""
    connection = await session.connection()
    await connection.exec_driver_sql(
        _INSERT_NEW_HOUSEHOLD,
        (
            _json(_row(household)),
            _json([_row(m) for m in members]),
            _json([_row(d) for d in documents]),
            idempotency.CREATED_STATUS,
            _json(response.model_dump(mode="json")) if claimed else None,
            claimed.principal_sub if claimed else None,
            claimed.key if claimed else None,
            _json([_row(review)] if review else []),
        ),
    )


async def register(
    *,
    session: AsyncSession,
    data: HouseholdCreate,
    actor: Actor,
    now: datetime,
    policy: DedupPolicy,
    claimed: idempotency.Claimed | None = None,
) -> RegistrationResult:
    """Register a household; probable duplicates send it to review as pending_review. The
    response is stored under ``claimed`` (the request's Idempotency-Key) in the same
    statement as the household."""
    if not actor.can_access(data.site_id):
        raise SiteOutOfScope(f"No registration site {data.site_id} among your sites.")
    case_number = await next_case_number(session, data.site_id)
    if case_number is None:
        raise UnknownSite(data.site_id)
    household_id = changes.new_id()
    built = [
        _new_member(member, household_id, position, now)
        for position, member in enumerate(data.members, start=1)
    ]
    matches = await dedup.find_duplicates(
        session=session,
        people=[_person(member, documents) for member, documents in built],
        phone=data.phone,
        threshold=policy.threshold,
        limit=policy.candidates_per_member,
    )
    household = Household(
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
        status=HouseholdStatus.PENDING_REVIEW if matches else HouseholdStatus.ACTIVE,
        version=1,
        registered_at=now,
        updated_at=now,
    )
    members = [member for member, _ in built]
    result = RegistrationResult(
        id=household.id,
        case_number=household.case_number,
        status=HouseholdStatus(household.status),
        possible_duplicates=_possible_duplicates(matches),
    )
    documents = [d for _, member_documents in built for d in member_documents]
    # A new household has no review yet: its review is written with it, not looked for.
    review = reviews.new_review(household, matches, now) if matches else None
    await _insert_new(session, household, members, documents, result, claimed, review)
    await changes.record(session, actor, "household.register", household.id)
    await changes.announce(session, HouseholdRegistered, household, actor, now, members)
    if review is not None:
        await reviews.announce_review(session, review, actor)
    await changes.announce_contact(session, household, None, actor)
    return result


# --- reads ---------------------------------------------------------------------------------


async def _view(session: AsyncSession, household: Household) -> HouseholdView:
    return (await load_views(session, [household]))[0]


async def read(
    *, session: AsyncSession, household_id: UUID, actor: Actor
) -> tuple[HouseholdPublic, int]:
    """A household with its members (audited); returns it and its version for the ETag."""
    household = await changes.find_household(session, household_id, actor)
    await changes.record(session, actor, "household.read", household.id)
    view = await _view(session, household)
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
    return await _view(session, household)


async def _members(session: AsyncSession, household_id: UUID) -> list[Member]:
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
    members = await _members(session, household.id)
    if data.relationship == Relationship.HEAD:
        raise HeadRule(
            "The household already has a head. Add this person with their relationship to "
            "the head, then make them the head with PATCH (former_head_relationship)."
        )
    before = _vulnerability_sets(members)
    member, documents = _new_member(data, household.id, max(m.position for m in members) + 1, now)
    session.add(member)
    await session.flush()
    session.add_all(documents)
    matches = await dedup.find_duplicates(
        session=session,
        people=[_person(member, documents)],
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
    return await _view(session, household), member.id


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
    members = await _members(session, household.id)
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
        session.add_all(_documents(member, data.documents, household.id))
    _set_keys(member)
    changes.touch(household, now)
    await changes.record(session, actor, "household.member.update", household.id)
    event = VulnerabilitiesFlagged if _flagged(before, members) else HouseholdUpdated
    await changes.announce(session, event, household, actor, now, members)
    return await _view(session, household)


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
    members = await _members(session, household.id)
    member = _find_member(members, member_id)
    if member.relationship == Relationship.HEAD:
        raise HeadRule("The head cannot be removed. Make another member the head first.")
    await session.delete(member)
    members.remove(member)
    changes.touch(household, now)
    await changes.record(session, actor, "household.member.remove", household.id)
    await changes.announce(session, HouseholdUpdated, household, actor, now, members)
    return await _view(session, household)


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
    return await _view(session, household)


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
    return await _view(session, household)


async def erase(*, session: AsyncSession, household_id: UUID, actor: Actor, now: datetime) -> None:
    """Erase a household's personal data from every table of this service.

    The household row stays as a tombstone (id, case number, site, status `erased`); members,
    documents and dedup keys are deleted; idempotency records keep only a marker; contact
    details still waiting in the outbox are dropped. HouseholdErased tells every other
    service to do the same, and a tombstone clears the compacted contacts topic.
    """
    household = await changes.find_household(session, household_id, actor, for_update=True)
    await session.exec(
        sa.delete(MemberDocument).where(col(MemberDocument.household_id) == household.id)
    )
    await session.exec(sa.delete(Member).where(col(Member.household_id) == household.id))
    for name in PERSONAL_FIELDS:
        setattr(household, name, None)
    household.needs = []
    household.status = HouseholdStatus.ERASED
    household.erased_at = now
    changes.touch(household, now)
    await reviews.close_open_review(
        session=session,
        household_id=household.id,
        resolution=ReviewResolution.HOUSEHOLD_ERASED,
        now=now,
    )
    await _forget(session, household.id)
    await changes.record(session, actor, "household.erase", household.id)
    await session.flush()
    await outbox.add_event(
        session,
        HouseholdErased(household_id=household.id, site_id=household.site_id),
        key=str(household.id),
        source=changes.SOURCE,
        actor=actor.principal.sub,
        subject=f"household/{household.id}",
    )
    await changes.tombstone_contact(session, household.id)


async def _forget(session: AsyncSession, household_id: UUID) -> None:
    await idempotency.forget_household(session=session, household_id=household_id)
    # Contact cards still waiting in the outbox hold the phone: drop them (the tombstone
    # that follows clears what was already published).
    await session.exec(
        sa.delete(outbox_table).where(
            outbox_table.c.topic == CONTACTS.name, outbox_table.c.key == str(household_id)
        )
    )

"""Registration's rows for synthetic households, keyed with the service's own key functions.

Used by the bulk load (COPY of a million people) and by the PostgreSQL ceiling (the same
inserts as one registration, through asyncpg). The columns are those of
``services/registration/migrations/versions/0002_registration.py``; the duplicate-check keys
come from ``services.registration.domain.names`` and ``ages`` exactly as the service computes
them, so the loaded people are found by the service's own look-ups.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bench.generator import SyntheticHousehold, SyntheticMember
from services.registration.domain.ages import birth_year
from services.registration.domain.dedup import Person
from services.registration.domain.names import NameKeys, document_number_key, name_keys
from shared.vocabulary import Sex

HOUSEHOLD_COLUMNS = (
    "id", "case_number", "site_id", "admin1", "admin2", "settlement", "displacement_status",
    "arrival_date", "preferred_language", "phone", "consent_data_processing",
    "consent_referral_sharing", "consent_contact", "consent_given_at", "needs", "status",
    "version", "registered_at", "updated_at",
)  # fmt: skip
MEMBER_COLUMNS = (
    "id", "household_id", "position", "given_name", "family_name", "sex", "date_of_birth",
    "estimated_age", "estimated_on", "relationship", "nationality", "vulnerabilities",
    "given_key", "family_key", "given_phonetic", "family_phonetic", "family_initial",
    "birth_year", "name_key",
)  # fmt: skip
DOCUMENT_COLUMNS = (
    "id", "member_id", "household_id", "doc_type", "number", "number_key", "issuing_country",
)  # fmt: skip


@functools.lru_cache(maxsize=200_000)
def cached_name_keys(given: str, family: str | None, nationality: str) -> NameKeys:
    """The service's ``name_keys``; names repeat a lot, so each combination is keyed once."""
    return name_keys(given, family, nationality)


@dataclass(frozen=True)
class _Age:
    date_of_birth: date | None
    estimated_age: int | None
    estimated_on: date | None


def member_birth_year(member: SyntheticMember, today: date) -> int:
    estimated_on = today if member.estimated_age is not None else None
    return birth_year(_Age(member.date_of_birth, member.estimated_age, estimated_on))


@dataclass
class RegistrationRows:
    households: list[tuple[Any, ...]]
    members: list[tuple[Any, ...]]
    documents: list[tuple[Any, ...]]


def rows_for(
    household: SyntheticHousehold, *, case_number: str, registered_at: datetime, today: date
) -> RegistrationRows:
    """One household's rows (status active), ready for COPY or INSERT."""
    household_id = uuid.uuid4()
    needs = json.dumps([{"type": t, "priority": p} for t, p in household.needs])
    households = [
        (
            household_id, case_number, household.site.id, household.site.admin1,
            household.site.admin2, household.site.settlement, household.displacement_status,
            household.arrival_date, household.preferred_language, household.phone, True,
            household.referral_sharing, household.contact, registered_at, needs, "active", 1,
            registered_at, registered_at,
        )
    ]  # fmt: skip
    members: list[tuple[Any, ...]] = []
    documents: list[tuple[Any, ...]] = []
    for position, member in enumerate(household.members, start=1):
        member_id = uuid.uuid4()
        keys = cached_name_keys(member.given_name, member.family_name, member.nationality)
        estimated_on = today if member.estimated_age is not None else None
        members.append(
            (
                member_id, household_id, position, member.given_name, member.family_name,
                member.sex, member.date_of_birth, member.estimated_age, estimated_on,
                member.relationship, member.nationality, list(member.vulnerabilities),
                keys.given_key, keys.family_key, keys.given_phonetic, keys.family_phonetic,
                keys.family_initial, member_birth_year(member, today), keys.full_key,
            )
        )  # fmt: skip
        for document in member.documents:
            documents.append(
                (
                    uuid.uuid4(), member_id, household_id, document.type, document.number,
                    document_number_key(document.number), document.issuing_country,
                )
            )  # fmt: skip
    return RegistrationRows(households, members, documents)


def registered_at_for(index: int, today: date) -> datetime:
    """Spread preloaded registrations over the last two years (deterministic)."""
    midnight = datetime.combine(today, time(), tzinfo=UTC)
    return midnight - timedelta(minutes=(index * 7919) % (2 * 365 * 24 * 60))


def people_for(household: SyntheticHousehold, today: date) -> list[Person]:
    """What the duplicate check sees of each member (as ``households._person`` builds it)."""
    people = []
    for member in household.members:
        documents = tuple(
            (d.type, d.issuing_country, document_number_key(d.number)) for d in member.documents
        )
        people.append(
            Person(
                keys=cached_name_keys(member.given_name, member.family_name, member.nationality),
                sex=Sex(member.sex),
                date_of_birth=member.date_of_birth,
                birth_year=member_birth_year(member, today),
                estimated=member.estimated_age is not None,
                documents=documents,
            )
        )
    return people

"""Duplicate detection: candidates from index-backed look-ups, scored in Python.

Look-ups (each one an index range scan, never a scan of everyone; see the migration):

* **name blocks** — registered members whose family-name phonetic code equals the new
  member's family *or* given code (the second catches swapped names), or whose given-name
  code does together with the family name's initial, in both cases with a year of birth
  within ``YEAR_TOLERANCE``;
* **documents** — the same document type, number (normalised) and issuing country;
* **phone** — households with the same phone number.

Only households that are active, pending review or deactivated are candidates (merged and
erased ones are not people any more). Each candidate member is scored against the new
member it was found for (``domain/scoring.py``); a household scores as its best member
pair plus the phone bonus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.domain.scoring import (
    BIRTH_SAME_YEAR,
    CLOSE_DATE_DAYS,
    NAME_GATE,
    SEX_SAME,
    WEIGHT_BIRTH,
    WEIGHT_NAME,
    WEIGHT_SEX,
    YEAR_TOLERANCE,
    CandidateRow,
    Match,
    PairScore,
    Person,
    Reason,
    Registered,
    combine,
    registered_from,
    score_candidates,
    score_pair,
)
from shared.db import run
from shared.vocabulary import HouseholdStatus

__all__ = [  # the check, and the scoring names its callers (tests, the benchmark) use
    "NAME_GATE",
    "DedupPolicy",
    "Match",
    "Person",
    "Reason",
    "Registered",
    "find_duplicates",
    "look_up",
    "lookup_parameters",
    "same_year_can_match",
    "score_pair",
]

log = logging.getLogger(__name__)
TRUNCATED = Counter(
    "haven_registration_dedup_lookup_truncated_total",
    "Duplicate look-ups that returned their limit of people (candidates may have been missed)",
    ["lookup"],
)

CANDIDATE_STATUSES = (
    HouseholdStatus.ACTIVE,
    HouseholdStatus.PENDING_REVIEW,
    HouseholdStatus.DEACTIVATED,
)


@dataclass(frozen=True)
class DedupPolicy:
    """How hard the check looks: the score that sends a household to review, and the most
    people fetched per look-up (both from the service's settings)."""

    threshold: float
    candidates_per_member: int


# --- one statement for every look-up ------------------------------------------------------
#
# The look-ups of all the new members run as ONE statement (queries.DUPLICATE_LOOKUP): one
# round trip, prepared once per connection; each branch an index range scan.
#
# The name block also leaves out the people whose birth date cannot bring the pair to the
# threshold, even with the same name and sex: for two exact dates that is anyone not born
# within CLOSE_DATE_DAYS, on the same day and month a year apart, or with day and month
# swapped; the rest of the same year only when a same-year birth can still reach the
# threshold (``same_year_can_match``), or their household has the new household's phone
# (whose bonus can). Only estimated ages are looked up over the whole YEAR_TOLERANCE window.
# That phone is tested as "one of the households with this phone" (their ids, found once per
# statement), not on the joined household, so that the whole birth filter is on the member
# row and PostgreSQL applies it in the index scan, before it joins each household: about half
# as many household look-ups for a large block at a million people.

NAME_ARMS = ("family", "given")


def same_year_can_match(threshold: float) -> bool:
    """Whether two exact birth dates of the same year, and nothing closer, can still reach
    ``threshold`` without the phone's bonus (same name, same sex: the best case)."""
    best = WEIGHT_NAME + WEIGHT_BIRTH * BIRTH_SAME_YEAR + WEIGHT_SEX * SEX_SAME
    return best >= threshold


def lookup_parameters(
    people: Sequence[Person],
    phone: str | None,
    *,
    limit: int,
    exclude: UUID | None,
    threshold: float,
) -> dict[str, Any]:
    """The parameters of :data:`queries.DUPLICATE_LOOKUP` for these people."""
    blocked = [
        (index, person)
        for index, person in enumerate(people)
        if person.keys.family_phonetic or person.keys.given_phonetic
    ]
    documents = [
        (index, document) for index, person in enumerate(people) for document in person.documents
    ]
    return {
        "block_index": [index for index, _ in blocked],
        "code_a": [p.keys.family_phonetic or None for _, p in blocked],
        "code_b": [p.keys.given_phonetic or None for _, p in blocked],
        "initial_a": [p.keys.family_initial for _, p in blocked],
        "initial_b": [p.keys.given_key[:1] for _, p in blocked],
        "birth_year": [p.birth_year for _, p in blocked],
        "born": [None if p.estimated else p.date_of_birth for _, p in blocked],
        "document_index": [index for index, _ in documents],
        "doc_type": [doc_type for _, (doc_type, _, _) in documents],
        "issuing_country": [country for _, (_, country, _) in documents],
        "number_key": [number_key for _, (_, _, number_key) in documents],
        "statuses": [s.value for s in CANDIDATE_STATUSES],
        "exclude": exclude,
        "year_tolerance": YEAR_TOLERANCE,
        "close_days": CLOSE_DATE_DAYS,
        "limit": limit,
        "phone": phone,
        "same_year_can_match": same_year_can_match(threshold),
    }


@dataclass
class LookupRows:
    """What the look-ups found: name-block rows per member index (as returned: most of them
    never score, so they are not built into ``Registered``), documents, phone."""

    names: dict[int, list[CandidateRow]] = field(default_factory=dict)
    documents: list[Registered] = field(default_factory=list)
    phone: list[CandidateRow] = field(default_factory=list)

    def members(self, index: int) -> list[Registered]:
        """The name-block candidates of the member at ``index``."""
        return [registered_from(row) for row in self.names.get(index, [])]


async def look_up(
    session: AsyncSession,
    people: Sequence[Person],
    phone: str | None,
    *,
    limit: int,
    exclude: UUID | None,
    threshold: float,
) -> LookupRows:
    """Run every look-up of ``people`` in one statement: every registered person who could
    score ``threshold`` against one of them (up to ``limit`` per look-up)."""
    parameters = lookup_parameters(people, phone, limit=limit, exclude=exclude, threshold=threshold)
    result = await run(session, queries.DUPLICATE_LOOKUP, parameters)
    found = LookupRows()
    per_branch: dict[tuple[str, int], int] = {}
    seen: set[tuple[int, UUID]] = set()
    rows_found = cast("Sequence[CandidateRow]", result.all())
    for row in rows_found:
        kind, index = row[0], row[1]
        values = row[2:]
        per_branch[kind, index] = per_branch.get((kind, index), 0) + 1
        if kind in NAME_ARMS:
            rows = found.names.setdefault(index, [])
            if (index, values[0]) not in seen:
                seen.add((index, values[0]))
                rows.append(values)
        elif kind == "document":
            found.documents.append(registered_from(values))
        else:
            found.phone.append(values)
    for (kind, _), count in per_branch.items():
        if count >= limit:
            # Realistic blocks are far smaller; a full one means candidates may be missed.
            TRUNCATED.labels(kind).inc()
            log.warning("duplicate look-up hit its limit", extra={"lookup": kind, "limit": limit})
    return found


async def find_duplicates(
    *,
    session: AsyncSession,
    people: Sequence[Person],
    phone: str | None,
    threshold: float,
    limit: int,
    exclude_household: UUID | None = None,
) -> list[Match]:
    """Registered households that score at or above ``threshold`` against ``people``."""
    found = await look_up(
        session, people, phone, limit=limit, exclude=exclude_household, threshold=threshold
    )
    pairs: list[tuple[Registered, PairScore]] = []
    for index, person in enumerate(people):
        pairs += score_candidates(person, found.names.get(index, []) + found.phone, phone=phone)
    return combine(pairs, document_matches=found.documents, phone=phone, threshold=threshold)

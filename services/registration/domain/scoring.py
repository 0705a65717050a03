"""Duplicate scores: how alike a new member and a registered one are, and which households
reach the threshold (pure functions; the weights are documented in the service README)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from services.registration.domain.names import NameKeys
from shared.vocabulary import Sex

# --- weights (documented in services/registration/README.md) ------------------------------
WEIGHT_NAME = 0.55
WEIGHT_BIRTH = 0.35
WEIGHT_SEX = 0.10
WEIGHT_PHONE = 0.15
NAME_GATE = 0.85  # below this two names are different, unless the phone is the same
SWAPPED_NAMES_FACTOR = 0.97  # given and family name exchanged: slightly less certain
SINGLE_NAME_FACTOR = 0.90  # one of them has no family name: only given names compared
SAME_NAME = 0.99
DOCUMENT_SCORE = 1.0  # the same document is certain
YEAR_TOLERANCE = 2  # blocking window, and the estimated-age tolerance
CLOSE_DATE_DAYS = 31

BIRTH_SAME_DATE = 1.0
BIRTH_DAY_MONTH_SWAPPED = 0.9
BIRTH_WITHIN_A_MONTH = 0.8
BIRTH_YEAR_TYPO = 0.6  # same day and month, one year apart
BIRTH_SAME_YEAR = 0.3
ESTIMATED_BY_YEARS = {0: 0.8, 1: 0.7, 2: 0.6}  # either age is an estimate

SEX_SAME = 1.0
SEX_UNSURE = 0.5  # either is other or unknown
SEX_DIFFERENT = 0.0


class Reason:
    """Reason codes shown to reviewers and carried in DuplicateReviewRequested."""

    SAME_DOCUMENT = "same_document"
    SAME_NAME = "same_name"
    SIMILAR_NAME = "similar_name"
    SWAPPED_NAMES = "swapped_names"
    SAME_BIRTH_DATE = "same_birth_date"
    CLOSE_BIRTH_DATE = "close_birth_date"
    SAME_BIRTH_YEAR = "same_birth_year"
    ESTIMATED_AGE_CLOSE = "estimated_age_within_2_years"
    SAME_PHONE = "same_phone"


@dataclass(frozen=True)
class Person:
    """A member being registered, as the duplicate check sees them."""

    keys: NameKeys
    sex: Sex
    date_of_birth: date | None
    birth_year: int
    estimated: bool
    documents: tuple[tuple[str, str, str], ...] = ()  # (type, issuing country, number key)


@dataclass(frozen=True)
class Registered:
    """A registered member found by a look-up, with their household's facts."""

    member_id: UUID
    household_id: UUID
    case_number: str
    site_id: str
    given_key: str
    family_key: str
    sex: Sex
    date_of_birth: date | None
    birth_year: int
    estimated: bool
    phone: str | None


@dataclass(frozen=True)
class PairScore:
    score: float
    reasons: frozenset[str]


NO_MATCH = PairScore(0.0, frozenset())


@dataclass
class Match:
    """A registered household that is probably the same as the new one."""

    household_id: UUID
    case_number: str
    site_id: str
    score: float
    reasons: tuple[str, ...]


@dataclass
class _HouseholdTally:
    case_number: str
    site_id: str
    best: float = 0.0
    reasons: set[str] = field(default_factory=set)
    same_phone: bool = False


# --- scoring (pure) ------------------------------------------------------------------------


def _jw(a: str, b: str) -> float:
    return float(JaroWinkler.similarity(a, b)) if a and b else 0.0


def name_similarity(
    new_given: str, new_family: str, old_given: str, old_family: str
) -> tuple[float, str | None]:
    """Similarity of two names in [0, 1] and its reason (same, similar or swapped)."""
    if not new_family or not old_family:
        score = SINGLE_NAME_FACTOR * _jw(new_given, old_given)
        return score, (Reason.SIMILAR_NAME if score else None)
    straight = (_jw(new_given, old_given) + _jw(new_family, old_family)) / 2
    swapped = SWAPPED_NAMES_FACTOR * (_jw(new_given, old_family) + _jw(new_family, old_given)) / 2
    if swapped > straight:
        return swapped, Reason.SWAPPED_NAMES
    return straight, (Reason.SAME_NAME if straight >= SAME_NAME else Reason.SIMILAR_NAME)


def birth_similarity(
    new_date: date | None,
    new_year: int,
    new_estimated: bool,
    old_date: date | None,
    old_year: int,
    old_estimated: bool,
) -> tuple[float, str | None]:
    """How well two birth dates (or estimated ages) agree, in [0, 1], and why."""
    if new_estimated or old_estimated or new_date is None or old_date is None:
        score = ESTIMATED_BY_YEARS.get(abs(new_year - old_year), 0.0)
        return score, (Reason.ESTIMATED_AGE_CLOSE if score else None)
    if new_date == old_date:
        return BIRTH_SAME_DATE, Reason.SAME_BIRTH_DATE
    if new_date.year == old_date.year and (new_date.month, new_date.day) == (
        old_date.day,
        old_date.month,
    ):
        return BIRTH_DAY_MONTH_SWAPPED, Reason.CLOSE_BIRTH_DATE
    if abs((new_date - old_date).days) <= CLOSE_DATE_DAYS:
        return BIRTH_WITHIN_A_MONTH, Reason.CLOSE_BIRTH_DATE
    if (new_date.month, new_date.day) == (old_date.month, old_date.day) and (
        abs(new_date.year - old_date.year) == 1
    ):
        return BIRTH_YEAR_TYPO, Reason.CLOSE_BIRTH_DATE
    if new_date.year == old_date.year:
        return BIRTH_SAME_YEAR, Reason.SAME_BIRTH_YEAR
    return 0.0, None


def sex_agreement(new: Sex, old: Sex) -> float:
    known = {Sex.FEMALE, Sex.MALE}
    if new not in known or old not in known:
        return SEX_UNSURE
    return SEX_SAME if new == old else SEX_DIFFERENT


def score_pair(person: Person, registered: Registered, *, same_phone: bool) -> PairScore:
    """Score of one new member against one registered member (before the phone bonus).

    ``WEIGHT_NAME·name + WEIGHT_BIRTH·birth + WEIGHT_SEX·sex`` when the birth dates agree at
    all and the names pass ``NAME_GATE`` (the gate is lifted when the phone is the same, so
    names in scripts that do not transliterate into each other can still meet).
    """
    birth, birth_reason = birth_similarity(
        person.date_of_birth,
        person.birth_year,
        person.estimated,
        registered.date_of_birth,
        registered.birth_year,
        registered.estimated,
    )
    if birth <= 0:
        return NO_MATCH
    name, name_reason = name_similarity(
        person.keys.given_key, person.keys.family_key, registered.given_key, registered.family_key
    )
    if name < NAME_GATE and not same_phone:
        return NO_MATCH
    score = (
        WEIGHT_NAME * name
        + WEIGHT_BIRTH * birth
        + WEIGHT_SEX * sex_agreement(person.sex, registered.sex)
    )
    reasons = {r for r in (birth_reason,) if r}
    if name >= NAME_GATE and name_reason:
        reasons.add(name_reason)
    return PairScore(min(1.0, score), frozenset(reasons))


# A name can pass NAME_GATE only if each of the two similarities it averages is at least
# 2·NAME_GATE - 1 (the other is at most 1); the swapped and single-name scores, scaled down by
# their factors, need more. So a candidate none of whose similarities reaches this floor
# cannot pass the gate (the margin absorbs rounding).
NAME_FLOOR = 2 * NAME_GATE - 1 - 1e-9

# A registered member as the look-up returns it: the columns of ``Registered``, in order.
CandidateRow = Sequence[Any]
_GIVEN, _FAMILY, _PHONE = 4, 5, 10


def _near(query: str, choices: list[str]) -> set[int]:
    """Positions of ``choices`` whose Jaro-Winkler similarity to ``query`` reaches NAME_FLOOR
    (computed in C for the whole list at once)."""
    if not query:
        return set()  # _jw scores an empty name 0
    near = process.extract(
        query, choices, scorer=JaroWinkler.similarity, score_cutoff=NAME_FLOOR, limit=None
    )
    return {position for _, _, position in near}


def score_candidates(
    person: Person, rows: Sequence[CandidateRow], *, phone: str | None
) -> list[tuple[Registered, PairScore]]:
    """The pairs of ``person`` with ``rows`` that score, in the order of ``rows``: the same as
    :func:`score_pair` on every row (which stays the reference), but a row whose names cannot
    pass NAME_GATE (found for the whole block at once, in C) and whose household does not
    have the same phone is dropped before it becomes a ``Registered`` and is scored."""
    givens = [row[_GIVEN] for row in rows]
    families = [row[_FAMILY] for row in rows]
    new_given, new_family = person.keys.given_key, person.keys.family_key
    given_near = _near(new_given, givens)
    if new_family:
        family_near = _near(new_family, families)
        swapped_near = _near(new_given, families) & _near(new_family, givens)
    pairs: list[tuple[Registered, PairScore]] = []
    for position, row in enumerate(rows):
        same_phone = phone is not None and row[_PHONE] == phone
        if not same_phone and not (
            (
                position in given_near
                and (not new_family or not families[position] or position in family_near)
            )
            or (new_family and position in swapped_near)
        ):
            continue
        registered = registered_from(row)
        pair = score_pair(person, registered, same_phone=same_phone)
        if pair is not NO_MATCH:
            pairs.append((registered, pair))
    return pairs


def combine(
    pairs: Iterable[tuple[Registered, PairScore]],
    *,
    document_matches: Iterable[Registered],
    phone: str | None,
    threshold: float,
) -> list[Match]:
    """Household scores: best pair, plus ``WEIGHT_PHONE`` for the same phone; a shared
    document scores ``DOCUMENT_SCORE``. Returns those at or above ``threshold``, best first."""
    tallies: dict[UUID, _HouseholdTally] = {}

    def tally(row: Registered) -> _HouseholdTally:
        entry = tallies.setdefault(row.household_id, _HouseholdTally(row.case_number, row.site_id))
        entry.same_phone = entry.same_phone or (phone is not None and row.phone == phone)
        return entry

    for row, pair in pairs:
        entry = tally(row)
        if pair.score > 0:
            entry.best = max(entry.best, pair.score)
            entry.reasons |= pair.reasons
    for row in document_matches:
        entry = tally(row)
        entry.best = DOCUMENT_SCORE
        entry.reasons.add(Reason.SAME_DOCUMENT)
    matches: list[Match] = []
    for household_id, entry in tallies.items():
        if entry.best <= 0:
            continue
        score = entry.best
        if entry.same_phone:
            score = min(1.0, score + WEIGHT_PHONE)
            entry.reasons.add(Reason.SAME_PHONE)
        if score >= threshold:
            matches.append(
                Match(
                    household_id=household_id,
                    case_number=entry.case_number,
                    site_id=entry.site_id,
                    score=round(score, 3),
                    reasons=tuple(sorted(entry.reasons)),
                )
            )
    matches.sort(key=lambda m: (-m.score, m.case_number))
    return matches


def registered_from(values: Sequence[Any]) -> Registered:
    return Registered(
        member_id=values[0],
        household_id=values[1],
        case_number=values[2],
        site_id=values[3],
        given_key=values[4],
        family_key=values[5],
        sex=Sex(values[6]),
        date_of_birth=values[7],
        birth_year=values[8],
        estimated=bool(values[9]),
        phone=values[10],
    )

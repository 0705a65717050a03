"""Ages from a date of birth or from an age estimated on a given day."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from shared.vocabulary import AgeBand


class HasAge(Protocol):
    """A member's age facts: a date of birth, or an age estimated on a day."""

    @property
    def date_of_birth(self) -> date | None: ...
    @property
    def estimated_age(self) -> int | None: ...
    @property
    def estimated_on(self) -> date | None: ...


def full_years(start: date, end: date) -> int:
    """Completed years from ``start`` to ``end`` (0 if ``end`` is earlier)."""
    years = end.year - start.year - ((end.month, end.day) < (start.month, start.day))
    return max(0, years)


def age_on(person: HasAge, today: date) -> int:
    """Age in years today: from the birth date, else the estimate plus the years since."""
    if person.date_of_birth is not None:
        return full_years(person.date_of_birth, today)
    if person.estimated_age is None or person.estimated_on is None:
        raise ValueError("a member has a date of birth or an estimated age")
    return person.estimated_age + full_years(person.estimated_on, today)


def birth_year(person: HasAge) -> int:
    """The (estimated) year of birth, a blocking key of the duplicate check."""
    if person.date_of_birth is not None:
        return person.date_of_birth.year
    if person.estimated_age is None or person.estimated_on is None:
        raise ValueError("a member has a date of birth or an estimated age")
    return person.estimated_on.year - person.estimated_age


def age_band(person: HasAge, today: date) -> AgeBand:
    return AgeBand.of(age_on(person, today))

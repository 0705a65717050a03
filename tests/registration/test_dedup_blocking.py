"""The name blocks' birth-date filter drops only people who could never match.

``queries.DUPLICATE_LOOKUP`` leaves out candidates whose birth date cannot bring the pair to the
threshold even with the same name and sex. Here one registered person per day over ±3 years
(exact dates and estimated ages) shares the new person's name and sex: every one of them
whose pair can reach the threshold (with the phone's bonus when the phone is the same) must
be returned, and the rest are left out.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registration.domain import dedup, scoring
from services.registration.domain.names import NameKeys
from services.registration.domain.scoring import Person
from shared.db import create_engine, session_factory
from shared.vocabulary import Sex
from tests.support import migrated_database

CENTRE = date(1984, 7, 1)
PHONE = "+37360000001"
DAYS = 3 * 366
# near the turn of a year (a month's tolerance crosses it), and a leap day
BIRTH_DATES = [date(1984, 1, 10), date(1984, 12, 25), date(1984, 2, 29)]
KEYS = NameKeys(
    given_key="olena",
    family_key="kovalenko",
    given_phonetic="OLN",
    family_phonetic="KFLNK",
    family_initial="k",
)


def _people() -> list[dict[str, Any]]:
    rows = []
    for offset in range(-DAYS, DAYS + 1):
        born = CENTRE + timedelta(days=offset)
        rows.append({"born": born, "year": born.year, "estimated": None})
    for year in range(CENTRE.year - 4, CENTRE.year + 5):
        rows.append({"born": None, "year": year, "estimated": 2026 - year})
    return rows


@pytest.fixture(scope="module")
async def engine(infra: Any) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await migrated_database(infra, "registration"), pool_size=1)
    people = _people()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO registration_site (id, name, country, admin1, timezone) "
                "VALUES ('MDA-CHI', 'Chișinău', 'MDA', 'MD01', 'Europe/Chisinau')"
            )
        )
        households = [
            {"id": uuid.uuid4(), "case": f"MDA-CHI-{index:06d}", "phone": PHONE}
            for index in range(len(people))
        ]
        # a list of parameter sets: one batched call per table instead of a round trip per row
        await conn.execute(
            sa.text(
                "INSERT INTO household (id, case_number, site_id, admin1, "
                "displacement_status, preferred_language, consent_data_processing, "
                "consent_referral_sharing, consent_contact, consent_given_at, status, "
                "version, registered_at, updated_at, phone) VALUES (:id, :case, 'MDA-CHI', "
                "'MD01', 'refugee', 'uk', true, false, false, now(), 'active', 1, now(), "
                "now(), :phone)"
            ),
            households,
        )
        await conn.execute(
            sa.text(
                "INSERT INTO household_member (id, household_id, position, given_name, "
                "family_name, sex, date_of_birth, estimated_age, estimated_on, relationship, "
                "nationality, given_key, family_key, given_phonetic, family_phonetic, "
                "family_initial, birth_year, name_key) VALUES (gen_random_uuid(), :h, 1, "
                "'Olena', 'Kovalenko', 'female', :born, :estimated, :on, 'head', 'UKR', "
                "'olena', 'kovalenko', 'OLN', 'KFLNK', 'k', :year, 'olena kovalenko')"
            ),
            [
                {
                    "h": household["id"],
                    "born": person["born"],
                    "estimated": person["estimated"],
                    "on": date(2026, 1, 1) if person["estimated"] is not None else None,
                    "year": person["year"],
                }
                for household, person in zip(households, people, strict=True)
            ],
        )
    yield engine
    await engine.dispose()


def _best_score(person: Person, row: dict[str, Any], *, same_phone: bool) -> float:
    """The pair's score with the same name and sex: the most this birth date allows."""
    registered = scoring.Registered(
        member_id=uuid.uuid4(),
        household_id=uuid.uuid4(),
        case_number="MDA-CHI-000000",
        site_id="MDA-CHI",
        given_key=KEYS.given_key,
        family_key=KEYS.family_key,
        sex=Sex.FEMALE,
        date_of_birth=row["born"],
        birth_year=row["year"],
        estimated=row["estimated"] is not None,
        phone=PHONE if same_phone else None,
    )
    score = scoring.score_pair(person, registered, same_phone=same_phone).score
    return min(1.0, score + scoring.WEIGHT_PHONE) if same_phone and score else score


@pytest.mark.parametrize(("threshold", "phone"), [(0.80, None), (0.80, PHONE), (0.70, None)])
@pytest.mark.parametrize("estimated", [False, True])
@pytest.mark.parametrize("born", BIRTH_DATES)
async def test_everyone_whose_birth_date_can_reach_the_threshold_is_a_candidate(
    engine: AsyncEngine, born: date, estimated: bool, threshold: float, phone: str | None
) -> None:
    person = Person(
        keys=KEYS,
        sex=Sex.FEMALE,
        date_of_birth=None if estimated else born,
        birth_year=born.year,
        estimated=estimated,
    )
    async with session_factory(engine)() as session, session.begin():
        found = await dedup.look_up(
            session, [person], phone, limit=10_000, exclude=None, threshold=threshold
        )
    returned = {(r.date_of_birth, r.birth_year, r.estimated) for r in found.members(0)}
    for row in _people():
        key = (row["born"], row["year"], row["estimated"] is not None)
        if _best_score(person, row, same_phone=phone is not None) >= threshold:
            assert key in returned, (key, threshold, phone)
    # and the filter does filter: most of ±3 years of exact dates cannot reach it
    assert len(returned) < len(_people()) / 2 or estimated


async def test_same_year_births_are_left_out_when_they_cannot_reach_the_threshold(
    engine: AsyncEngine,
) -> None:
    born = date(1984, 7, 1)
    person = Person(keys=KEYS, sex=Sex.FEMALE, date_of_birth=born, birth_year=1984, estimated=False)
    assert not dedup.same_year_can_match(0.80)
    async with session_factory(engine)() as session, session.begin():
        found = await dedup.look_up(
            session, [person], None, limit=10_000, exclude=None, threshold=0.80
        )
    far_in_the_year = {
        r.date_of_birth
        for r in found.members(0)
        if r.date_of_birth
        and r.date_of_birth.year == 1984
        and abs((r.date_of_birth - born).days) > 31
    }
    # only the day-and-month swap (1984-01-07) can still score enough
    assert far_in_the_year == {date(1984, 1, 7)}

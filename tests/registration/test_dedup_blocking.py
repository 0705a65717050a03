"""The name blocks' birth-date filter drops only people who could never match.

``dedup.LOOKUP_SQL`` leaves out candidates whose birth date ``birth_similarity`` scores 0.
Here one registered person per day over ±3 years (exact dates and estimated ages) shares the
new person's name: every one of them with a birth score above 0 must be returned.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registration.domain import dedup
from services.registration.domain.dedup import Person
from services.registration.domain.names import NameKeys
from shared.db import create_engine, session_factory
from shared.vocabulary import Sex
from tests.support import migrated_database

CENTRE = date(1984, 7, 1)
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
        for index, person in enumerate(people):
            household = uuid.uuid4()
            await conn.execute(
                sa.text(
                    "INSERT INTO household (id, case_number, site_id, admin1, "
                    "displacement_status, preferred_language, consent_data_processing, "
                    "consent_referral_sharing, consent_contact, consent_given_at, status, "
                    "version, registered_at, updated_at) VALUES (:id, :case, 'MDA-CHI', 'MD01', "
                    "'refugee', 'uk', true, false, false, now(), 'active', 1, now(), now())"
                ),
                {"id": household, "case": f"MDA-CHI-{index:06d}"},
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
                {
                    "h": household,
                    "born": person["born"],
                    "estimated": person["estimated"],
                    "on": date(2026, 1, 1) if person["estimated"] is not None else None,
                    "year": person["year"],
                },
            )
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("estimated", [False, True])
@pytest.mark.parametrize("born", BIRTH_DATES)
async def test_everyone_whose_birth_date_can_score_is_a_candidate(
    engine: AsyncEngine, born: date, estimated: bool
) -> None:
    person = Person(
        keys=KEYS,
        sex=Sex.FEMALE,
        date_of_birth=None if estimated else born,
        birth_year=born.year,
        estimated=estimated,
    )
    async with session_factory(engine)() as session, session.begin():
        found = await dedup.look_up(session, [person], None, limit=10_000, exclude=None)
    returned = {(r.date_of_birth, r.birth_year, r.estimated) for r in found.names.get(0, [])}
    for row in _people():
        key = (row["born"], row["year"], row["estimated"] is not None)
        score, _ = dedup.birth_similarity(
            person.date_of_birth, person.birth_year, estimated, row["born"], row["year"], key[2]
        )
        if score > 0:
            assert key in returned, (key, score)
    # and the filter does filter: most of ±3 years of exact dates cannot score
    assert len(returned) < len(_people()) / 2 or estimated

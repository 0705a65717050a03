"""The duplicate score, as a pure function: weights, tolerances, swapped names, documents."""
# ruff: noqa: RUF001

import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registration.domain import scoring
from services.registration.domain.names import name_keys
from services.registration.domain.scoring import Person, Reason, Registered
from shared.vocabulary import Sex

THRESHOLD = 0.80


def person(
    given: str,
    family: str | None,
    born: date | None = None,
    *,
    estimated_birth_year: int | None = None,
    sex: Sex = Sex.MALE,
    nationality: str | None = None,
) -> Person:
    year = born.year if born else estimated_birth_year
    assert year is not None
    return Person(
        keys=name_keys(given, family, nationality),
        sex=sex,
        date_of_birth=born,
        birth_year=year,
        estimated=born is None,
    )


def registered(p: Person, *, phone: str | None = None) -> Registered:
    return Registered(
        member_id=uuid.uuid4(),
        household_id=uuid.uuid4(),
        case_number="MDA-CHI-000001",
        site_id="MDA-CHI",
        given_key=p.keys.given_key,
        family_key=p.keys.family_key,
        sex=p.sex,
        date_of_birth=p.date_of_birth,
        birth_year=p.birth_year,
        estimated=p.estimated,
        phone=phone,
    )


def household_score(new: Person, old: Person, *, phone: str | None = None) -> list[scoring.Match]:
    row = registered(old, phone=phone)
    pair = scoring.score_pair(new, row, same_phone=phone is not None)
    return scoring.combine([(row, pair)], document_matches=[], phone=phone, threshold=THRESHOLD)


BORN = date(1980, 4, 2)


@pytest.mark.parametrize(
    ("cyrillic", "latin", "nationality", "sex"),
    [
        (("Олександр", "Шевченко"), ("Oleksandr", "Shevchenko"), "UKR", Sex.MALE),
        (("Александру", "Русу"), ("Alexandru", "Rusu"), "MDA", Sex.MALE),
        (("Наталья", "Ковалёва"), ("Natalia", "Kovaleva"), "RUS", Sex.FEMALE),
        (("Ștefan", "Munteanu"), ("Stefan", "Munteanu"), "MDA", Sex.MALE),
    ],
)
def test_the_same_person_across_scripts_scores_as_certain(
    cyrillic: tuple[str, str], latin: tuple[str, str], nationality: str, sex: Sex
) -> None:
    first = person(*cyrillic, BORN, sex=sex, nationality=nationality)
    second = person(*latin, BORN, sex=sex, nationality=nationality)
    [match] = household_score(second, first)
    assert match.score == 1.0
    assert set(match.reasons) == {Reason.SAME_NAME, Reason.SAME_BIRTH_DATE}


def test_same_common_name_with_a_different_birth_date_is_not_a_duplicate() -> None:
    new = person("Ion", "Popescu", date(1975, 2, 1))
    assert household_score(new, person("Ion", "Popescu", date(1990, 6, 15))) == []
    # even in the same year: 0.55·1 + 0.35·0.3 + 0.10·1 = 0.755 < 0.80
    assert household_score(new, person("Ion", "Popescu", date(1975, 11, 20))) == []


def test_birth_date_tolerance() -> None:
    similarity = scoring.birth_similarity
    assert similarity(BORN, 1980, False, BORN, 1980, False) == (1.0, Reason.SAME_BIRTH_DATE)
    assert similarity(date(1980, 4, 2), 1980, False, date(1980, 2, 4), 1980, False)[0] == 0.9
    assert similarity(date(1980, 4, 2), 1980, False, date(1980, 4, 30), 1980, False)[0] == 0.8
    assert similarity(date(1980, 4, 2), 1980, False, date(1981, 4, 2), 1981, False)[0] == 0.6
    assert similarity(date(1980, 4, 2), 1980, False, date(1980, 12, 2), 1980, False)[0] == 0.3
    assert similarity(date(1980, 4, 2), 1980, False, date(1983, 4, 2), 1983, False)[0] == 0.0
    # an estimated age meets a birth date or another estimate within two years
    assert similarity(None, 1981, True, BORN, 1980, False) == (0.7, Reason.ESTIMATED_AGE_CLOSE)
    assert similarity(None, 1982, True, None, 1980, True)[0] == 0.6
    assert similarity(None, 1983, True, None, 1980, True)[0] == 0.0


def test_estimated_age_within_two_years_matches() -> None:
    new = person("Natalia", "Kovaleva", estimated_birth_year=1982, sex=Sex.FEMALE)
    old = person("Наталья", "Ковалёва", BORN, sex=Sex.FEMALE)
    [match] = household_score(new, old)
    assert match.score == pytest.approx(0.55 + 0.35 * 0.6 + 0.10, abs=1e-3)
    assert Reason.ESTIMATED_AGE_CLOSE in match.reasons
    too_far = person("Natalia", "Kovaleva", estimated_birth_year=1983, sex=Sex.FEMALE)
    assert household_score(too_far, old) == []


def test_swapped_given_and_family_names_are_considered() -> None:
    new = person("Shevchenko", "Oleksandr", BORN)
    [match] = household_score(new, person("Олександр", "Шевченко", BORN, nationality="UKR"))
    assert Reason.SWAPPED_NAMES in match.reasons
    assert match.score == pytest.approx(0.55 * 0.97 + 0.35 + 0.10, abs=1e-3)


def test_different_names_on_the_same_day_are_not_duplicates() -> None:
    assert household_score(person("Maria", "Rusu", BORN), person("Elena", "Cojocaru", BORN)) == []


def test_the_same_phone_adds_weight_and_lifts_the_name_gate() -> None:
    phone = "+37369000001"
    new = person("Ion", "Popescu", date(1975, 2, 1))
    near = person("Ion", "Popescu", date(1975, 11, 20))  # 0.755 alone
    [match] = household_score(new, near, phone=phone)
    assert match.score == pytest.approx(0.755 + 0.15, abs=1e-3)
    assert Reason.SAME_PHONE in match.reasons
    # an Arabic-script name does not transliterate into the Latin one; phone + birth date do
    arabic = person("محمد", "احمدی", BORN)
    assert household_score(person("Mohammad", "Ahmadi", BORN), arabic) == []
    assert household_score(person("Mohammad", "Ahmadi", BORN), arabic, phone=phone)


def test_a_shared_document_is_certain_whatever_the_names() -> None:
    row = registered(person("Olena", "Bondar", BORN))
    matches = scoring.combine([], document_matches=[row], phone=None, threshold=THRESHOLD)
    assert [(m.score, m.reasons) for m in matches] == [(1.0, (Reason.SAME_DOCUMENT,))]


def test_different_sex_weighs_against() -> None:
    new = person("Sasha", "Rusu", BORN, sex=Sex.FEMALE)
    [match] = household_score(new, person("Sasha", "Rusu", BORN, sex=Sex.MALE))
    assert match.score == pytest.approx(0.90, abs=1e-3)


def test_people_with_a_single_name() -> None:
    new = person("Ahmad", None, BORN)
    [match] = household_score(new, person("Ahmad", None, BORN))
    assert match.score == pytest.approx(0.55 * 0.9 + 0.35 + 0.10, abs=1e-3)


def test_households_are_ranked_best_first_and_keep_their_best_pair() -> None:
    new = person("Ion", "Rusu", BORN)
    first, second = registered(person("Ion", "Rusu", BORN)), registered(person("Ion", "Rus", BORN))
    pairs = [(row, scoring.score_pair(new, row, same_phone=False)) for row in (second, first)]
    matches = scoring.combine(pairs, document_matches=[], phone=None, threshold=THRESHOLD)
    assert [m.household_id for m in matches] == [first.household_id, second.household_id]
    assert matches[0].score > matches[1].score


name_text = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzșțăабвгдежзийклмнопрстуфхцчшщюяєії", min_size=1, max_size=12
)
birth_dates = st.dates(min_value=date(1910, 1, 1), max_value=date(2024, 12, 31))


@given(name_text, name_text, birth_dates, name_text, name_text, birth_dates, st.booleans())
def test_scores_stay_between_zero_and_one(
    g1: str, f1: str, d1: date, g2: str, f2: str, d2: date, same_phone: bool
) -> None:
    pair = scoring.score_pair(
        person(g1, f1, d1), registered(person(g2, f2, d2)), same_phone=same_phone
    )
    assert 0.0 <= pair.score <= 1.0


@given(name_text, name_text, birth_dates)
def test_everyone_is_a_certain_duplicate_of_themself(
    given_name: str, family: str, born: date
) -> None:
    me = person(given_name, family, born)
    if me.keys.given_key and me.keys.family_key:
        assert scoring.score_pair(me, registered(me), same_phone=False).score == 1.0

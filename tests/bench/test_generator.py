"""Synthetic data looks like the people Haven registers, and the service accepts it as is."""

from __future__ import annotations

import collections
import json
import re
import statistics
from datetime import date

import pytest

from bench.generator import (
    HouseholdGenerator,
    SyntheticHousehold,
    registered_event,
    request_body,
)
from bench.names import DATA_DIR, Culture, WeightedNames, name_lists
from bench.registration_rows import people_for, rows_for
from services.registration.domain.dedup import NAME_GATE, Registered, score_pair
from services.registration.models import HouseholdCreate
from services.registration.settings import RegistrationSettings

TODAY = date(2026, 11, 23)
CYRILLIC = re.compile("[\u0400-\u04ff]")


@pytest.fixture(scope="module")
def households() -> list[SyntheticHousehold]:
    generator = HouseholdGenerator(2024, today=TODAY)
    return [generator.household() for _ in range(3000)]


def test_households_average_three_and_a_half_people_with_one_head(
    households: list[SyntheticHousehold],
) -> None:
    sizes = [len(h.members) for h in households]
    assert 3.3 <= statistics.fmean(sizes) <= 3.7
    assert min(sizes) == 1 and max(sizes) >= 7
    for household in households:
        heads = [m for m in household.members if m.relationship == "head"]
        assert len(heads) == 1
        assert heads[0].age_on(TODAY) >= 18


def test_mostly_women_and_children_as_in_a_refugee_response(
    households: list[SyntheticHousehold],
) -> None:
    heads = [m for h in households for m in h.members if m.relationship == "head"]
    female_heads = sum(m.sex == "female" for m in heads) / len(heads)
    assert 0.65 <= female_heads <= 0.85
    people = [m for h in households for m in h.members]
    children = sum(m.age_on(TODAY) < 18 for m in people) / len(people)
    assert 0.35 <= children <= 0.55  # UNHCR: about 40-45 % of refugees from Ukraine


def test_names_come_in_cyrillic_and_latin(households: list[SyntheticHousehold]) -> None:
    people = [m for h in households for m in h.members]
    cyrillic = sum(bool(CYRILLIC.search(m.given_name)) for m in people) / len(people)
    assert 0.55 <= cyrillic <= 0.80  # the rest: Romanian names and passport spellings
    assert any("ș" in (m.family_name or "") or "ț" in (m.family_name or "") for m in people)


def test_family_names_have_a_skewed_head_and_a_long_tail(
    households: list[SyntheticHousehold],
) -> None:
    counts = collections.Counter(m.family_name for h in households for m in h.members)
    people = sum(counts.values())
    most_common_share = counts.most_common(1)[0][1] / people
    assert 0.002 <= most_common_share <= 0.03  # Коваленко-like, not everyone's name
    assert len(counts) > 1000  # a long tail, not a few dozen names for everyone


def test_every_body_is_a_valid_registration_request(households: list[SyntheticHousehold]) -> None:
    for household in households[:500]:
        body = request_body(household)
        HouseholdCreate.model_validate_json(json.dumps(body, ensure_ascii=False))


def test_the_same_seed_gives_the_same_households() -> None:
    first = [request_body(HouseholdGenerator(7, today=TODAY).household()) for _ in range(1)]
    again = [request_body(HouseholdGenerator(7, today=TODAY).household()) for _ in range(1)]
    assert first == again


def test_registered_events_carry_no_names_or_birth_dates(
    households: list[SyntheticHousehold],
) -> None:
    import uuid

    household = households[0]
    event = registered_event(
        household, household_id=uuid.uuid4(), case_number="MDA-CHI-000001", today=TODAY
    )
    text = event.model_dump_json()
    assert event.household_size == len(household.members)
    for member in household.members:
        assert member.given_name not in text
        if member.date_of_birth:
            assert member.date_of_birth.isoformat() not in text


def test_re_registrations_are_findable_by_the_services_own_scoring(
    households: list[SyntheticHousehold],
) -> None:
    """A planted duplicate's head must score as a duplicate with registration's own rules,
    or the dedup scenario would measure look-ups that find nothing."""
    threshold = RegistrationSettings().duplicate_threshold
    generator = HouseholdGenerator(99, today=TODAY)
    found = 0
    sample = households[:300]
    for original in sample:
        again = generator.re_registration(original)
        old_rows = rows_for(original, case_number="X", registered_at=None, today=TODAY)  # type: ignore[arg-type]
        head = old_rows.members[0]
        registered = Registered(
            member_id=head[0], household_id=head[1], case_number="X", site_id="MDA-CHI",
            given_key=head[12], family_key=head[13], sex=head[5], date_of_birth=head[6],
            birth_year=head[17], estimated=head[7] is not None, phone=original.phone,
        )  # fmt: skip
        person = people_for(again, TODAY)[0]
        same_phone = original.phone is not None and original.phone == again.phone
        score = score_pair(person, registered, same_phone=same_phone).score
        found += score >= threshold or bool(person.documents)
    assert found / len(sample) >= 0.8
    assert NAME_GATE > 0  # the gate exists: names alone do not make a duplicate


def test_shipped_name_lists_are_well_formed() -> None:
    files = sorted(DATA_DIR.glob("*.csv"))
    assert len(files) == 15
    for culture in Culture:
        lists = name_lists(culture)
        for names in (lists.female, lists.male, lists.family.head, lists.family.stems):
            assert len(set(names.names)) == len(names.names), f"{culture}: a name twice"
            assert all(b > a for a, b in zip(names.cumulative, names.cumulative[1:], strict=False))


def test_weighted_picks_follow_the_weights() -> None:
    import random

    names = WeightedNames.of([("common", 9.0), ("rare", 1.0)])
    rng = random.Random(1)
    picks = collections.Counter(names.pick(rng) for _ in range(20_000))
    assert picks["common"] / 20_000 == pytest.approx(0.9, abs=0.01)
    assert names.share("rare") == pytest.approx(0.1)
    assert names.share("absent") == 0.0

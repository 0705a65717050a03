"""The bulk scoring of a candidate block gives exactly what the per-pair reference gives."""

import random
import uuid
from collections import Counter
from datetime import date, timedelta
from typing import Any

from rapidfuzz.distance import JaroWinkler

from services.registration.domain import scoring
from services.registration.domain.names import NameKeys, phonetic_code
from services.registration.domain.scoring import NO_MATCH, Person, Reason
from shared.vocabulary import Sex

STEMS = ("ivan", "ion", "olena", "alexandru", "natalia", "maria", "mihai", "stefan", "rusu")
STEMS += ("munteanu", "shevchenko", "kovaleva", "ceban", "popescu", "lupu", "tkachenko")
PHONES = ("+37360000001", "+37360000002", None)
SEXES = (Sex.MALE, Sex.FEMALE, Sex.OTHER, Sex.UNKNOWN)
BORN = date(1980, 4, 2)


def typo(rng: random.Random, word: str, most: int = 2) -> str:
    """The word with up to ``most`` letters changed, dropped or doubled."""
    letters = list(word)
    for _ in range(rng.choice((0, 0, *range(1, most + 1)))):
        at = rng.randrange(len(letters))
        change = rng.choice(("swap", "drop", "double", "replace"))
        if change == "swap" and at + 1 < len(letters):
            letters[at], letters[at + 1] = letters[at + 1], letters[at]
        elif change == "drop" and len(letters) > 1:
            del letters[at]
        elif change == "double":
            letters.insert(at, letters[at])
        else:
            letters[at] = rng.choice("aeioukmnrst")
    return "".join(letters)


def keys(given: str, family: str) -> NameKeys:
    return NameKeys(
        given_key=given,
        family_key=family,
        given_phonetic=phonetic_code(given),
        family_phonetic=phonetic_code(family),
        family_initial=family[:1],
    )


def new_person(rng: random.Random) -> Person:
    family = "" if rng.random() < 0.15 else rng.choice(STEMS)
    estimated = rng.random() < 0.2
    born = BORN + timedelta(days=rng.randrange(-400, 400))
    return Person(
        keys=keys(rng.choice(STEMS), family),
        sex=rng.choice(SEXES),
        date_of_birth=None if estimated else born,
        birth_year=born.year,
        estimated=estimated,
    )


def candidate(rng: random.Random, person: Person) -> tuple[Any, ...]:
    """A registered member near ``person``: retyped, swapped, without a family name, or
    someone else; born close by or not; sometimes with an estimated age."""
    given, family = person.keys.given_key, person.keys.family_key
    shape = rng.random()
    if shape < 0.35:
        given, family = typo(rng, given), typo(rng, family) if family else ""
    elif shape < 0.55:
        given, family = (typo(rng, family), typo(rng, given)) if family else (given, "")
    elif shape < 0.65:
        family = ""
    elif shape < 0.8:  # one name the same, the other far off: the gate's edge
        given = typo(rng, given, most=5)
    else:
        given, family = typo(rng, rng.choice(STEMS)), rng.choice((*STEMS, ""))
    base = person.date_of_birth or date(person.birth_year, 6, 15)
    days = rng.choice((0, 0, 1, -20, 45, 365, -365, rng.randrange(-900, 900)))
    born = base + timedelta(days=days)
    if rng.random() < 0.1:
        born = date(born.year, base.day, base.month) if base.day <= 12 else born
    estimated = rng.random() < 0.15
    return (
        uuid.uuid4(),
        uuid.uuid4(),
        "MDA-CHI-000001",
        "MDA-CHI",
        given,
        family,
        rng.choice(SEXES).value,
        None if estimated else born,
        born.year,
        estimated,
        rng.choice(PHONES),
    )


def reference(
    person: Person, rows: list[tuple[Any, ...]], phone: str | None
) -> list[tuple[scoring.Registered, scoring.PairScore]]:
    pairs = []
    for row in rows:
        registered = scoring.registered_from(row)
        same_phone = phone is not None and registered.phone == phone
        pair = scoring.score_pair(person, registered, same_phone=same_phone)
        if pair is not NO_MATCH:
            pairs.append((registered, pair))
    return pairs


def test_bulk_scoring_equals_the_per_pair_reference_on_random_pairs() -> None:
    rng = random.Random(20261123)
    kinds: Counter[str] = Counter()
    compared = 0
    for _ in range(150):
        person = new_person(rng)
        phone = rng.choice(PHONES)
        rows = [candidate(rng, person) for _ in range(rng.randrange(1, 60))]
        expected = reference(person, rows, phone)
        assert scoring.score_candidates(person, rows, phone=phone) == expected
        compared += len(rows)
        for registered, pair in expected:
            kinds.update(pair.reasons)
            name, _ = scoring.name_similarity(
                person.keys.given_key,
                person.keys.family_key,
                registered.given_key,
                registered.family_key,
            )
            if name < scoring.NAME_GATE:
                kinds["gate lifted by the phone"] += 1
            if not person.keys.family_key or not registered.family_key:
                kinds["single name"] += 1
            elif (
                name >= scoring.NAME_GATE
                and JaroWinkler.similarity(person.keys.given_key, registered.given_key)
                < scoring.NAME_FLOOR + 0.03
            ):
                kinds["one name at the floor"] += 1
    # the random pairs reach every branch the bulk path has to get right
    assert compared > 4_000
    for kind in (
        Reason.SWAPPED_NAMES,
        Reason.SAME_NAME,
        Reason.SIMILAR_NAME,
        "gate lifted by the phone",
        "single name",
        "one name at the floor",
    ):
        assert kinds[kind] >= 10, (kind, kinds)


def test_a_block_where_nobody_passes_the_name_gate_scores_nothing_without_the_phone() -> None:
    person = Person(
        keys=keys("natalia", "kovaleva"),
        sex=Sex.FEMALE,
        date_of_birth=BORN,
        birth_year=BORN.year,
        estimated=False,
    )
    row = (uuid.uuid4(), uuid.uuid4(), "C-1", "S", "ion", "lupu", "female", BORN, 1980, False, "+1")
    assert scoring.score_candidates(person, [row], phone=None) == []
    [(registered, pair)] = scoring.score_candidates(person, [row], phone="+1")
    assert registered.given_key == "ion"
    assert pair == scoring.score_pair(person, registered, same_phone=True)

"""The entitlement policy files: validated on load, chosen by effective date; the rules."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.distribution.domain.entitlements import Received, category_entitlement
from services.distribution.domain.policy import (
    Basis,
    CategoryRule,
    LargerHouseholds,
    PolicyError,
    load_policies,
)
from services.distribution.models import ItemCategory
from services.distribution.settings import DEFAULT_POLICY_DIR

TODAY = date(2025, 3, 10)

POLICY = """
version: "{version}"
effective_from: {effective_from}
categories:
  food: {{basis: household, quantity: {food}, window_days: 30}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_policy_holds_the_sphere_style_defaults() -> None:
    policy = load_policies(DEFAULT_POLICY_DIR).in_force(TODAY)
    food = policy.categories[ItemCategory.FOOD]
    assert (food.allowance(5), food.allowance(6), food.window_days) == (1, 2, 30)
    hygiene = policy.categories[ItemCategory.HYGIENE]
    assert (hygiene.allowance(4), hygiene.window_days) == (4, 30)
    nfi = policy.categories[ItemCategory.NON_FOOD_ITEM]
    assert (nfi.allowance(7), nfi.window_days) == (1, None)
    medication = policy.categories[ItemCategory.MEDICATION]
    assert medication.requires_reference and medication.allowance(3) is None
    assert policy.shelter.beds_allowed(4, ["shelter"]) == 4
    assert policy.shelter.beds_allowed(4, ["food"]) == 0


def test_the_policy_in_force_is_the_latest_effective_one_never_a_future_one(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a.yaml", POLICY.format(version="v1", effective_from="2025-01-01", food=1))
    write(tmp_path, "b.yaml", POLICY.format(version="v2", effective_from="2025-04-01", food=3))
    book = load_policies(tmp_path)
    assert book.in_force(date(2025, 3, 31)).version == "v1"
    assert book.in_force(date(2025, 4, 1)).version == "v2"
    with pytest.raises(PolicyError, match="no entitlement policy is in force on 2024-12-31"):
        book.in_force(date(2024, 12, 31))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: v1\neffective_from: 2025-01-01\ncategories: {food: {quantity: 0}}",
            "food.quantity",
        ),
        ("version: v1\neffective_from: 2025-01-01\ncategories: {fuel: {quantity: 1}}", "fuel"),
        ("version: v1\neffective_from: 01/01/2025\ncategories: {}", "effective_from"),
        ("version: v1\neffective_from: 2025-01-01\ncategories: {}\nextra: 1", "extra"),
        (
            "version: v1\neffective_from: 2025-01-01\ncategories: {food: {window_days: 30}}",
            "quantity is required",
        ),
        (
            "version: v1\neffective_from: 2025-01-01\ncategories:\n  hygiene:\n    basis: person\n"
            "    quantity: 1\n    larger_households: {more_than_members: 5, quantity: 2}",
            "larger_households only applies",
        ),
        ("version: [unclosed", "cannot read it"),
    ],
)
def test_a_bad_policy_file_is_refused_with_its_path_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_two_versions_on_the_same_day_or_with_the_same_name_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", POLICY.format(version="v1", effective_from="2025-01-01", food=1))
    write(tmp_path, "b.yaml", POLICY.format(version="v2", effective_from="2025-01-01", food=2))
    with pytest.raises(PolicyError, match="same day"):
        load_policies(tmp_path)
    write(tmp_path, "b.yaml", POLICY.format(version="v1", effective_from="2025-02-01", food=2))
    with pytest.raises(PolicyError, match="unique"):
        load_policies(tmp_path)


def test_an_empty_or_missing_policy_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no entitlement policy file"):
        load_policies(tmp_path)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policies(tmp_path / "nowhere")


# --- the entitlement rule ------------------------------------------------------------------

FOOD = CategoryRule(
    basis=Basis.HOUSEHOLD,
    quantity=1,
    window_days=30,
    larger_households=LargerHouseholds(more_than_members=5, quantity=2),
)


def food(on: date, quantity: int = 1) -> Received:
    return Received(category=ItemCategory.FOOD, sku="FOOD-1", on=on, quantity=quantity)


def test_a_30_day_window_makes_the_household_due_again_on_day_30() -> None:
    served = [food(date(2025, 3, 1))]
    due = category_entitlement(
        ItemCategory.FOOD,
        FOOD,
        household_size=4,
        needs=(),
        received=served,
        today=date(2025, 3, 30),
    )
    assert (due.due, due.received, due.next_eligible_on) == (0, 1, date(2025, 3, 31))
    due = category_entitlement(
        ItemCategory.FOOD,
        FOOD,
        household_size=4,
        needs=(),
        received=served,
        today=date(2025, 3, 31),
    )
    assert (due.due, due.received, due.next_eligible_on) == (1, 0, date(2025, 3, 31))


def test_larger_households_get_two_parcels_and_the_next_date_follows_the_oldest() -> None:
    served = [food(date(2025, 3, 1)), food(date(2025, 3, 5))]
    due = category_entitlement(
        ItemCategory.FOOD, FOOD, household_size=6, needs=(), received=served, today=date(2025, 3, 6)
    )
    assert (due.allowed, due.due, due.next_eligible_on) == (2, 0, date(2025, 3, 31))


def test_once_only_and_need_based_categories() -> None:
    nfi = CategoryRule(quantity=1)
    given_once = [Received(ItemCategory.NON_FOOD_ITEM, "NFI", date(2024, 1, 1), 1)]
    due = category_entitlement(
        ItemCategory.NON_FOOD_ITEM,
        nfi,
        household_size=3,
        needs=(),
        received=given_once,
        today=TODAY,
    )
    assert (due.due, due.next_eligible_on, due.reason) == (0, None, "already_received")
    shelter_kit = CategoryRule(quantity=1, requires_need="shelter")
    due = category_entitlement(
        ItemCategory.SHELTER_MATERIAL,
        shelter_kit,
        household_size=3,
        needs=["food"],
        received=[],
        today=TODAY,
    )
    assert (due.due, due.reason) == (0, "need_not_assessed")


@given(
    size=st.integers(1, 12),
    gaps=st.lists(st.tuples(st.integers(0, 90), st.integers(1, 4)), max_size=8),
)
def test_due_and_next_eligible_date_agree_with_the_window(
    size: int, gaps: list[tuple[int, int]]
) -> None:
    """Property: 0 <= due <= allowed; received counts the window only; on the next eligible
    date something is due again, and the day before nothing is."""
    received = [food(TODAY - timedelta(days=days_ago), qty) for days_ago, qty in gaps]

    def at(day: date):  # type: ignore[no-untyped-def]
        return category_entitlement(
            ItemCategory.FOOD, FOOD, household_size=size, needs=(), received=received, today=day
        )

    now = at(TODAY)
    assert now.allowed is not None and now.due is not None
    assert 0 <= now.due <= now.allowed
    assert now.received == sum(q for d, q in gaps if d < 30)
    if now.due:
        assert now.next_eligible_on == TODAY
    else:
        assert now.next_eligible_on is not None and now.next_eligible_on > TODAY
        assert at(now.next_eligible_on).due
        assert not at(now.next_eligible_on - timedelta(days=1)).due

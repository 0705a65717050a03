"""Picking stock: first-expiry-first-out, a named batch when given, expired batches never."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.distribution.domain.errors import BatchExpired, InsufficientStock
from services.distribution.domain.stock import BalanceRow, Withdrawal, is_expired, plan_withdrawals

TODAY = date(2025, 3, 10)
WAREHOUSE = uuid.uuid4()


def row(row_id: int, batch: str | None, expires_on: date | None, quantity: int) -> BalanceRow:
    return BalanceRow(row_id, WAREHOUSE, "MED-1", batch, expires_on, quantity)


ROWS = [
    row(1, "LATE", TODAY + timedelta(days=90), 10),
    row(2, "SOON", TODAY + timedelta(days=5), 3),
    row(3, "GONE", TODAY, 50),  # expires today: expired
    row(4, "OLD", TODAY - timedelta(days=1), 50),
]


def test_picks_the_earliest_expiry_first_and_skips_expired_batches() -> None:
    plan = plan_withdrawals(ROWS, [Withdrawal(0, "MED-1", 5)], today=TODAY)
    assert [(p.row.batch, p.quantity) for p in plan[0]] == [("SOON", 3), ("LATE", 2)]


def test_a_named_batch_is_used_as_named() -> None:
    plan = plan_withdrawals(ROWS, [Withdrawal(0, "MED-1", 4, batch="LATE")], today=TODAY)
    assert [(p.row.batch, p.quantity) for p in plan[0]] == [("LATE", 4)]


def test_an_expired_named_batch_is_refused() -> None:
    with pytest.raises(BatchExpired) as info:
        plan_withdrawals(ROWS, [Withdrawal(0, "MED-1", 1, batch="GONE")], today=TODAY)
    assert info.value.extensions["batches"][0]["batch"] == "GONE"


def test_expired_stock_never_covers_a_shortfall_and_every_shortfall_is_listed() -> None:
    with pytest.raises(InsufficientStock) as info:
        plan_withdrawals(
            ROWS,
            [
                Withdrawal(0, "MED-1", 10),
                Withdrawal(1, "MED-1", 4),
                Withdrawal(2, "MED-1", 1, "NONE"),
            ],
            today=TODAY,
        )
    shortfalls = info.value.extensions["shortfalls"]
    assert [(s["line"], s["available"]) for s in shortfalls] == [(1, 3), (2, 0)]


batches = st.lists(st.tuples(st.integers(-5, 30), st.integers(0, 20)), min_size=1, max_size=6).map(
    lambda specs: [
        row(i + 1, f"B{i}", TODAY + timedelta(days=offset), quantity)
        for i, (offset, quantity) in enumerate(specs)
    ]
)


@given(rows=batches, wanted=st.lists(st.integers(1, 30), min_size=1, max_size=4))
def test_a_plan_never_oversells_and_never_touches_expired_stock(
    rows: list[BalanceRow], wanted: list[int]
) -> None:
    usable = sum(r.quantity for r in rows if not is_expired(r.expires_on, TODAY))
    withdrawals = [Withdrawal(i, "MED-1", q) for i, q in enumerate(wanted)]
    try:
        plan = plan_withdrawals(rows, withdrawals, today=TODAY)
    except InsufficientStock:
        assert sum(wanted) > usable
        return
    taken: dict[int, int] = {}
    for i, quantity in enumerate(wanted):
        assert sum(p.quantity for p in plan[i]) == quantity
        for pick in plan[i]:
            assert not is_expired(pick.row.expires_on, TODAY)
            taken[pick.row.id] = taken.get(pick.row.id, 0) + pick.quantity
    assert all(taken[r.id] <= r.quantity for r in rows if r.id in taken)
    # FEFO: a batch is only touched once every earlier-expiring usable batch is empty
    for r in rows:
        if taken.get(r.id):
            for earlier in rows:
                if (
                    not is_expired(earlier.expires_on, TODAY)
                    and earlier.expires_on is not None
                    and r.expires_on is not None
                    and earlier.expires_on < r.expires_on
                ):
                    assert taken.get(earlier.id, 0) == earlier.quantity

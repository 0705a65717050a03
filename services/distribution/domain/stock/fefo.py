"""First-expiry-first-out planning: which locked batches a withdrawal takes from (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from services.distribution.domain.errors import BatchExpired, InsufficientStock
from services.distribution.models import StockBalance


def is_expired(expires_on: date | None, today: date) -> bool:
    """A batch is expired on its expiry date and after: it is never issued from then on."""
    return expires_on is not None and expires_on <= today


@dataclass
class BalanceRow:
    """A locked balance row; ``quantity`` follows the movements written in this transaction."""

    id: int
    warehouse_id: UUID
    sku: str
    batch: str | None
    expires_on: date | None
    quantity: int

    @classmethod
    def of(cls, balance: StockBalance) -> BalanceRow:
        assert balance.id is not None
        return cls(
            balance.id,
            balance.warehouse_id,
            balance.sku,
            balance.batch,
            balance.expires_on,
            balance.quantity,
        )

    @property
    def key(self) -> tuple[UUID, str, str | None]:
        return (self.warehouse_id, self.sku, self.batch)


@dataclass(frozen=True)
class Withdrawal:
    """A wanted quantity of one SKU, from a named batch or first-expiry-first-out."""

    line_no: int
    sku: str
    quantity: int
    batch: str | None = None


@dataclass(frozen=True)
class Pick:
    row: BalanceRow
    quantity: int


def fefo_order(row: BalanceRow) -> tuple[bool, date, str, int]:
    """Earliest expiry first; batches without an expiry date last."""
    return (row.expires_on is None, row.expires_on or date.max, row.batch or "", row.id)


def plan_withdrawals(
    rows: Sequence[BalanceRow], wanted: Sequence[Withdrawal], *, today: date
) -> dict[int, list[Pick]]:
    """Which batches each withdrawal takes from; InsufficientStock lists every shortfall.

    Pure: ``rows`` are the locked balances of one warehouse; nothing is written.
    """
    remaining = {row.id: row.quantity for row in rows}
    by_sku: dict[str, list[BalanceRow]] = defaultdict(list)
    for row in sorted(rows, key=fefo_order):
        by_sku[row.sku].append(row)
    plan: dict[int, list[Pick]] = {}
    shortfalls: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for want in wanted:
        if want.batch is not None:
            candidates = [r for r in by_sku[want.sku] if r.batch == want.batch]
            if candidates and is_expired(candidates[0].expires_on, today):
                expired.append(
                    {
                        "sku": want.sku,
                        "batch": want.batch,
                        "expires_on": str(candidates[0].expires_on),
                    }
                )
                continue
        else:
            candidates = [r for r in by_sku[want.sku] if not is_expired(r.expires_on, today)]
        available = sum(remaining[r.id] for r in candidates)
        if available < want.quantity:
            shortfalls.append(
                {
                    "line": want.line_no,
                    "sku": want.sku,
                    "batch": want.batch,
                    "requested": want.quantity,
                    "available": available,
                }
            )
            continue
        picks, left = [], want.quantity
        for row in candidates:
            take = min(left, remaining[row.id])
            if take:
                remaining[row.id] -= take
                picks.append(Pick(row, take))
                left -= take
            if not left:
                break
        plan[want.line_no] = picks
    if expired:
        raise BatchExpired(
            "A named batch has expired and can no longer be issued.", batches=expired
        )
    if shortfalls:
        raise InsufficientStock(
            "Not enough unexpired stock for "
            + ", ".join(f"{s['sku']} ({s['available']} of {s['requested']})" for s in shortfalls)
            + ".",
            shortfalls=shortfalls,
        )
    return plan

"""Stock: FEFO planning (``fefo``), the ledger (``ledger``), commands and reads."""

from services.distribution.domain.stock.commands import adjust, receive, transfer
from services.distribution.domain.stock.fefo import (
    BalanceRow,
    Pick,
    Withdrawal,
    fefo_order,
    is_expired,
    plan_withdrawals,
)
from services.distribution.domain.stock.ledger import (
    EVENT_SOURCE,
    Ledger,
    ensure_balance_rows,
    lock_balances,
)
from services.distribution.domain.stock.reads import ledger_page, warehouse_stock

__all__ = [
    "EVENT_SOURCE",
    "BalanceRow",
    "Ledger",
    "Pick",
    "Withdrawal",
    "adjust",
    "ensure_balance_rows",
    "fefo_order",
    "is_expired",
    "ledger_page",
    "lock_balances",
    "plan_withdrawals",
    "receive",
    "transfer",
    "warehouse_stock",
]

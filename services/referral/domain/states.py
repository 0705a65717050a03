"""The referral state machine: every allowed transition, in one table.

```
created ──send──► sent ──accept──► accepted ──start──► in_progress ──complete──► completed
   │               │  ▲
   │ queue         │  │ reroute (next provider; on decline or deadline)
   ▼               ▼  │
unassigned ◄─queue─ declined                 cancel / revoke: from any open status
   │  (managers' queue)                      to cancelled / revoked
   └──assign──► sent
```

``declined`` never rests: the decline and the reroute (or queueing) happen in one transaction,
and the history keeps both steps. ``created`` rests only inside the creating transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from services.referral.domain.errors import IllegalTransition


class Status(StrEnum):
    CREATED = "created"
    SENT = "sent"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    UNASSIGNED = "unassigned"
    CANCELLED = "cancelled"
    REVOKED = "revoked"


class Action(StrEnum):
    SEND = "send"  # system: routing chose a provider
    QUEUE = "queue"  # system: no provider left, to the managers' queue
    REROUTE = "reroute"  # system: to the next provider after a decline or a deadline
    ACCEPT = "accept"
    DECLINE = "decline"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REVOKE = "revoke"
    ASSIGN = "assign"  # manager: a provider chosen by hand for a queued referral


OPEN_STATUSES = frozenset(
    {
        Status.CREATED,
        Status.SENT,
        Status.ACCEPTED,
        Status.IN_PROGRESS,
        Status.DECLINED,
        Status.UNASSIGNED,
    }
)
"""Not finished: at most one per household and service type (a partial unique index too)."""

TERMINAL_STATUSES = frozenset(Status) - OPEN_STATUSES

AT_PROVIDER_STATUSES = frozenset({Status.SENT, Status.ACCEPTED, Status.IN_PROGRESS})
"""Referrals that take one of a provider's open slots (its load)."""

TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.CREATED, Action.SEND): Status.SENT,
    (Status.CREATED, Action.QUEUE): Status.UNASSIGNED,
    (Status.SENT, Action.ACCEPT): Status.ACCEPTED,
    (Status.SENT, Action.DECLINE): Status.DECLINED,
    (Status.SENT, Action.REROUTE): Status.SENT,
    (Status.SENT, Action.QUEUE): Status.UNASSIGNED,
    (Status.DECLINED, Action.REROUTE): Status.SENT,
    (Status.DECLINED, Action.QUEUE): Status.UNASSIGNED,
    (Status.UNASSIGNED, Action.ASSIGN): Status.SENT,
    (Status.ACCEPTED, Action.START): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.COMPLETE): Status.COMPLETED,
    **{(status, Action.CANCEL): Status.CANCELLED for status in OPEN_STATUSES},
    **{(status, Action.REVOKE): Status.REVOKED for status in OPEN_STATUSES},
}

API_ACTIONS = (
    Action.ACCEPT,
    Action.DECLINE,
    Action.START,
    Action.COMPLETE,
    Action.CANCEL,
    Action.REVOKE,
    Action.ASSIGN,
)
"""Actions people take through ``POST /v1/referrals/{id}/<action>``; the rest are the system's."""


def allowed_actions(status: Status) -> list[Action]:
    """The API actions the table allows from ``status``, in a stable order."""
    return [action for action in API_ACTIONS if (status, action) in TRANSITIONS]


def next_status(status: Status, action: Action) -> Status:
    """The status ``action`` leads to from ``status``; IllegalTransition (409) otherwise."""
    target = TRANSITIONS.get((status, action))
    if target is None:
        allowed = allowed_actions(status)
        choices = ", ".join(allowed) if allowed else "nothing: it is closed"
        raise IllegalTransition(
            f"A referral that is {status} cannot be {_past(action)}; it allows {choices}.",
            current_status=str(status),
            action=str(action),
            allowed=[str(a) for a in allowed],
        )
    return target


def _past(action: Action) -> str:
    return {
        Action.SEND: "sent",
        Action.QUEUE: "queued",
        Action.REROUTE: "rerouted",
        Action.ACCEPT: "accepted",
        Action.DECLINE: "declined",
        Action.START: "started",
        Action.COMPLETE: "completed",
        Action.CANCEL: "cancelled",
        Action.REVOKE: "revoked",
        Action.ASSIGN: "assigned",
    }[action]

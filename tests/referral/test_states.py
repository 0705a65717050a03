"""The state machine table: every legal transition, and every illegal one refused with the
allowed actions named."""

from __future__ import annotations

import pytest

from services.referral.domain.states import (
    OPEN_STATUSES,
    IllegalTransition,
    allowed_actions,
    next_status,
)
from services.referral.domain.states import Action as A
from services.referral.domain.states import Status as S

OPEN = (S.CREATED, S.SENT, S.ACCEPTED, S.IN_PROGRESS, S.DECLINED, S.UNASSIGNED)

# The state machine written out independently of the implementation's table.
EXPECTED = {
    (S.CREATED, A.SEND): S.SENT,
    (S.CREATED, A.QUEUE): S.UNASSIGNED,
    (S.SENT, A.ACCEPT): S.ACCEPTED,
    (S.SENT, A.DECLINE): S.DECLINED,
    (S.SENT, A.REROUTE): S.SENT,
    (S.SENT, A.QUEUE): S.UNASSIGNED,
    (S.DECLINED, A.REROUTE): S.SENT,
    (S.DECLINED, A.QUEUE): S.UNASSIGNED,
    (S.UNASSIGNED, A.ASSIGN): S.SENT,
    (S.ACCEPTED, A.START): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.COMPLETE): S.COMPLETED,
    **{(status, A.CANCEL): S.CANCELLED for status in OPEN},
    **{(status, A.REVOKE): S.REVOKED for status in OPEN},
}

PAIRS = [(status, action) for status in S for action in A]


@pytest.mark.parametrize(("status", "action"), [p for p in PAIRS if p in EXPECTED])
def test_legal_transition(status: S, action: A) -> None:
    assert next_status(status, action) == EXPECTED[(status, action)]


@pytest.mark.parametrize(("status", "action"), [p for p in PAIRS if p not in EXPECTED])
def test_illegal_transition_names_the_allowed_actions(status: S, action: A) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_status(status, action)
    problem = info.value
    assert problem.status == 409
    assert problem.type_uri == "urn:haven:problem:illegal-transition"
    assert problem.extensions["allowed"] == [str(a) for a in allowed_actions(status)]
    assert problem.extensions["current_status"] == status
    assert str(status) in problem.detail


def test_allowed_actions_per_status() -> None:
    assert allowed_actions(S.SENT) == [A.ACCEPT, A.DECLINE, A.CANCEL, A.REVOKE]
    assert allowed_actions(S.ACCEPTED) == [A.START, A.CANCEL, A.REVOKE]
    assert allowed_actions(S.IN_PROGRESS) == [A.COMPLETE, A.CANCEL, A.REVOKE]
    assert allowed_actions(S.UNASSIGNED) == [A.CANCEL, A.REVOKE, A.ASSIGN]
    for closed in (S.COMPLETED, S.CANCELLED, S.REVOKED):
        assert allowed_actions(closed) == []
        assert closed not in OPEN_STATUSES
    assert set(OPEN) == OPEN_STATUSES

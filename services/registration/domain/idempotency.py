"""Idempotent intake: the first outcome of (caller, Idempotency-Key) is kept and replayed.

The record is claimed with ``INSERT ... ON CONFLICT`` in the registration's own transaction,
so two concurrent requests with the same key cannot both register: the second waits on the
first's uncommitted row, then finds it and replays the stored outcome (or, if the first
rolled back, claims the key itself). The same key with another body is refused. Records
expire after ``idempotency_ttl_hours``; erasing a household strips its records of the
request hash and the response and leaves only a marker that answers Gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration import queries
from services.registration.domain.errors import HouseholdErased, IdempotencyKeyReused
from services.registration.models import IdempotencyRecord
from shared.db import run
from shared.idempotency import Outcome, OutcomeKind

Response = dict[str, Any]
"""A registration's answer as JSON: what a re-sent request gets again."""


@dataclass(frozen=True)
class Claimed:
    """A key this transaction claimed: the registration stores its outcome under it."""

    principal_sub: str
    key: str


async def claim(
    *,
    session: AsyncSession,
    principal_sub: str,
    key: str,
    body_hash: str,
    now: datetime,
    ttl: timedelta,
) -> Outcome[Response] | None:
    """Claim the key for this transaction; the earlier outcome (replayed) when it was used
    before for the same request."""
    claimed = await run(
        session,
        queries.CLAIM_KEY,
        {
            "principal_sub": principal_sub,
            "idempotency_key": key,
            "request_hash": body_hash,
            "created_at": now,
            "expires_at": now + ttl,
        },
    )
    if claimed.first() is not None:
        return None
    record = (
        await session.exec(
            select(IdempotencyRecord).where(
                col(IdempotencyRecord.principal_sub) == principal_sub,
                col(IdempotencyRecord.idempotency_key) == key,
            )
        )
    ).one()
    assert record.outcome is not None  # stored in the transaction that claimed the key
    kind = OutcomeKind(record.outcome)
    if kind is OutcomeKind.ERASED:
        raise HouseholdErased("The household registered with this Idempotency-Key has been erased.")
    if record.request_hash != body_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request. "
            "Use a new key for a new registration."
        )
    assert record.response_body is not None
    return Outcome(kind, record.response_body, replayed=True)


def outcome_parameters(
    claimed: Claimed | None, kind: OutcomeKind, body_json: str
) -> dict[str, Any]:
    """The parameters with which ``queries.INSERT_NEW_HOUSEHOLD`` stores a registration's
    outcome (its body as JSON text) under the claimed key; all NULL without a key."""
    return {
        "outcome": kind.value,
        "response": body_json if claimed else None,
        "principal_sub": claimed.principal_sub if claimed else None,
        "idempotency_key": claimed.key if claimed else None,
    }


async def forget_household(*, session: AsyncSession, household_id: UUID) -> None:
    """Erasure: keep only a marker (the key answers Gone), no request hash, no response."""
    await session.exec(
        sa.update(IdempotencyRecord)
        .where(col(IdempotencyRecord.household_id) == household_id)
        .values(request_hash=None, response_body=None, outcome=OutcomeKind.ERASED.value)
    )


async def purge_expired(*, session: AsyncSession, now: datetime) -> int:
    result = await session.exec(
        sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)

"""Idempotent intake: the first response to (caller, Idempotency-Key) is kept and replayed.

The record is claimed with ``INSERT ... ON CONFLICT`` in the registration's own transaction,
so two concurrent requests with the same key cannot both register: the second waits on the
first's uncommitted row, then finds it and replays the stored response (or, if the first
rolled back, claims the key itself). The same key with another body is refused. Records
expire after ``idempotency_ttl_hours``; erasing a household strips its records of the
request hash and the response and leaves only a marker that answers 410.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.domain.errors import HouseholdErased, IdempotencyKeyReused
from services.registration.models import IdempotencyRecord

ERASED_STATUS = 410
CREATED_STATUS = 201  # the stored response of a registration


def request_hash(body: Any) -> str:
    """SHA-256 of the canonical JSON of a validated request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


# Fixed statements, sent as they are (prepared once per connection): these two run on every
# registration, and building them through the ORM cost more than PostgreSQL's work.
_CLAIM = """
INSERT INTO registration_idempotency
    (principal_sub, idempotency_key, request_hash, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (principal_sub, idempotency_key) DO UPDATE SET
    request_hash = EXCLUDED.request_hash, status_code = NULL, response_body = NULL,
    household_id = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
WHERE registration_idempotency.expires_at <= EXCLUDED.created_at  -- an expired record is taken over
RETURNING idempotency_key
"""


@dataclass(frozen=True)
class Claimed:
    """A key this transaction claimed: the registration stores its response under it."""

    principal_sub: str
    key: str


# The response is stored by the household's own INSERT statement (a data-modifying CTE in
# ``households._INSERT_NEW_HOUSEHOLD``), one round trip less per registration; with no key
# ($6 and $7 NULL) it updates nothing.
STORE_RESPONSE_CTE = """
UPDATE registration_idempotency SET status_code = $4, response_body = $5::jsonb,
    household_id = ($1::jsonb ->> 'id')::uuid
WHERE principal_sub = $6 AND idempotency_key = $7
"""


async def claim(
    *,
    session: AsyncSession,
    principal_sub: str,
    key: str,
    body_hash: str,
    now: datetime,
    ttl: timedelta,
) -> StoredResponse | None:
    """Claim the key for this transaction; the earlier response when it was used before."""
    connection = await session.connection()
    claimed = await connection.exec_driver_sql(
        _CLAIM, (principal_sub, key, body_hash, now, now + ttl)
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
    if record.status_code == ERASED_STATUS:
        raise HouseholdErased("The household registered with this Idempotency-Key has been erased.")
    if record.request_hash != body_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request. "
            "Use a new key for a new registration."
        )
    assert record.status_code is not None and record.response_body is not None
    return StoredResponse(record.status_code, record.response_body)


async def forget_household(*, session: AsyncSession, household_id: UUID) -> None:
    """Erasure: keep only a marker (the key answers 410), no request hash, no response."""
    await session.exec(
        sa.update(IdempotencyRecord)
        .where(col(IdempotencyRecord.household_id) == household_id)
        .values(request_hash=None, response_body=None, status_code=ERASED_STATUS)
    )


async def purge_expired(*, session: AsyncSession, now: datetime) -> int:
    result = await session.exec(
        sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)

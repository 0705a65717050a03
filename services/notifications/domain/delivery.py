"""Delivering notifications: claim what is due, record the outcome, retry, give up.

States: ``queued`` → ``sending`` → ``delivered``; a failed attempt → ``failed`` (due again
after a backoff) until ``max_attempts``, then ``dead``; ``skipped`` when a beneficiary cannot
be contacted. Every replica's sender claims with ``FOR UPDATE SKIP LOCKED`` and moves the
rows to ``sending`` with a lease in the same transaction, so a row is held by one sender at a
time; a row whose lease ran out (its sender died) is claimed again. Outcomes are recorded
only by the holder of the current lease (``lease_token``).

A channel's rate limit is a token bucket kept in ``notification_rate_bucket`` and taken in
the claim's transaction, so it holds across replicas. All times come from the caller's
clock.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications import queries
from services.notifications.channels.base import ChannelError
from services.notifications.domain.preparation import Claim, ready_to_send
from services.notifications.domain.schedule import backoff_seconds
from services.notifications.domain.settling import SOURCE, give_up
from services.notifications.domain.sql import execute
from services.notifications.models import Notification, Status, table_of
from services.notifications.settings import Channel, NotificationsSettings, TokenBucket
from shared import metrics
from shared.db import run
from shared.events.notifications import NotificationDelivered
from shared.outbox import add_event

__all__ = [
    "Claim",
    "channels_due",
    "claim_due",
    "record_all_delivered",
    "record_delivered",
    "record_failure",
]

notifications = table_of(Notification)

# --- claiming -------------------------------------------------------------------------------


def _due(channel: Channel, now: datetime) -> sa.ColumnElement[bool]:
    """Rows of ``channel`` to (re)send now: waiting ones whose time came, and sending ones
    whose lease ran out (the partial indexes ``notification_due`` and ``notification_leased``)."""
    return sa.and_(
        notifications.c.channel == channel,
        sa.or_(
            sa.and_(
                notifications.c.status.in_((Status.QUEUED, Status.FAILED)),
                notifications.c.next_attempt_at <= now,
            ),
            sa.and_(notifications.c.status == Status.SENDING, notifications.c.lease_until <= now),
        ),
    )


async def channels_due(
    *, session: AsyncSession, channels: list[Channel], now: datetime
) -> list[Channel]:
    """The channels that have something due, asked in one statement, so that a wake-up
    costs one query rather than a transaction per channel when most channels are idle."""
    if not channels:
        return []
    query = sa.select(*(sa.exists().where(_due(channel, now)) for channel in channels))
    flags = (await execute(session, query)).one()
    return [channel for channel, due in zip(channels, flags, strict=True) if due]


# Built once (claiming runs every round): calls only bind values. The claimed rows of a round


async def claim_due(
    *,
    session: AsyncSession,
    channel: Channel,
    settings: NotificationsSettings,
    now: datetime,
    limit: int,
) -> list[Claim]:
    """Take up to ``limit`` due notifications of ``channel`` (fewer if the rate limit says so)
    and mark them ``sending``; settle on the way those that must wait or be skipped."""
    due_here = _due(channel, now)
    # Idle rounds stop here, without touching (and locking) the rate bucket.
    if not (await execute(session, sa.select(sa.exists().where(due_here)))).scalar():
        return []
    bucket = settings.rate_limit_for(channel)
    tokens = await _refill(session, channel, bucket, now) if bucket else float(limit)
    allowance = min(limit, math.floor(tokens))
    if allowance < 1:
        return []
    rows = (
        await execute(
            session,
            sa.select(notifications)
            .where(due_here)
            .order_by(notifications.c.next_attempt_at)
            .limit(allowance)
            .with_for_update(skip_locked=True),
        )
    ).all()
    claims = await ready_to_send(session, list(rows), settings, now)
    if bucket is not None:
        await run(
            session,
            queries.TAKE_RATE_TOKENS,
            {"channel": channel, "tokens": tokens - len(claims), "now": now},
        )
    return claims


async def _refill(
    session: AsyncSession, channel: Channel, limit: TokenBucket, now: datetime
) -> float:
    """The channel's tokens now (the bucket row stays locked until the claim commits)."""
    await run(
        session,
        queries.CREATE_RATE_BUCKET,
        {"channel": channel, "tokens": float(limit.burst), "now": now},
    )
    bucket = (await run(session, queries.LOCK_RATE_BUCKET, {"channel": channel})).one()
    elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
    return float(min(limit.burst, bucket.tokens + elapsed * limit.per_second))


# --- recording outcomes ---------------------------------------------------------------------


async def record_delivered(*, session: AsyncSession, claim: Claim, now: datetime) -> bool:
    """Mark delivered if this claim still holds the lease; False when it lost it."""
    return claim.notification_id in await record_all_delivered(
        session=session, claims=[claim], now=now
    )


async def record_all_delivered(
    *, session: AsyncSession, claims: Sequence[Claim], now: datetime
) -> set[UUID]:
    """Mark delivered, in one statement, the claims that still hold their lease, and stage a
    ``NotificationDelivered`` for each; returns their ids (a claim that lost its lease is
    left to the new holder)."""
    if not claims:
        return set()
    rows = (
        await run(
            session,
            queries.MARK_DELIVERED,
            {
                "ids": [claim.notification_id for claim in claims],
                "lease_tokens": [claim.lease_token for claim in claims],
                "now": now,
            },
        )
    ).all()
    by_id = {row.id: row for row in rows}
    for claim in claims:  # events in the order the claims were made
        row = by_id.get(claim.notification_id)
        if row is None:
            continue
        await add_event(
            session,
            NotificationDelivered(
                notification_id=row.id,
                event_id=row.event_id,
                source_event_type=row.event_type,
                channel=row.channel,
                household_id=row.household_id,
            ),
            key=str(row.id),
            source=SOURCE,
        )
    for channel, count in Counter(row.channel for row in rows).items():
        delivered = metrics.NOTIFICATIONS.labels(channel, Status.DELIVERED)
        metrics.after_commit(session, functools.partial(delivered.inc, count))
    return set(by_id)


async def record_failure(
    *,
    session: AsyncSession,
    claim: Claim,
    error: ChannelError,
    settings: NotificationsSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> Status | None:
    """Schedule the next attempt, or give up when the error is permanent or attempts ran
    out; None when this claim lost its lease (someone else records)."""
    row = (
        await execute(
            session,
            sa.select(notifications)
            .where(
                notifications.c.id == claim.notification_id,
                notifications.c.lease_token == claim.lease_token,
                notifications.c.status == Status.SENDING,
            )
            .with_for_update(),
        )
    ).first()
    if row is None:
        return None
    if error.permanent or row.attempts >= settings.max_attempts:
        await give_up(session, row, error.code, now)
        return Status.DEAD
    delay = backoff_seconds(
        row.attempts,
        initial=settings.backoff_initial_seconds,
        maximum=settings.backoff_max_seconds,
        rng=rng,
    )
    await execute(
        session,
        notifications.update()
        .where(notifications.c.id == row.id)
        .values(
            status=Status.FAILED,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=error.code,
            lease_until=None,
            lease_token=None,
            updated_at=now,
        ),
    )
    metrics.after_commit(session, metrics.NOTIFICATIONS.labels(row.channel, Status.FAILED).inc)
    return Status.FAILED

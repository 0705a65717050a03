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
import logging
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications.channels.base import ChannelError, OutgoingMessage
from services.notifications.domain import households
from services.notifications.domain.errors import (
    NotificationNotFound,
    NotificationOutOfScope,
    NotRetryable,
)
from services.notifications.domain.masking import mask
from services.notifications.domain.recipients import ALL_SITES, unreachable_because
from services.notifications.domain.schedule import backoff_seconds, quiet_until
from services.notifications.domain.sms import sms_size
from services.notifications.domain.sql import execute
from services.notifications.domain.templates import RenderError, render_stored, stored_templates
from services.notifications.models import (
    Audience,
    Contact,
    HouseholdSite,
    Notification,
    RateBucket,
    SkipReason,
    Status,
    table_of,
)
from services.notifications.settings import Channel, NotificationsSettings, TokenBucket
from shared import metrics
from shared.auth import Principal, Role
from shared.events.notifications import NotificationDead, NotificationDelivered
from shared.outbox import add_event
from shared.pagination import decode_id_cursor, encode_id_cursor

log = logging.getLogger(__name__)

SOURCE = "haven/notifications"
RETRYABLE = (Status.DEAD, Status.FAILED, Status.SKIPPED)

notifications = table_of(Notification)
buckets = table_of(RateBucket)


@dataclass(frozen=True)
class Claim:
    """A notification this sender holds until ``lease_token`` is replaced."""

    notification_id: UUID
    lease_token: UUID
    attempt: int
    message: OutgoingMessage


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
# are moved to ``sending`` together, each with its own attempt, lease token and rendering.
_MARK_SENDING = sa.text(
    """
    UPDATE notification AS n
    SET status = 'sending', attempts = c.attempts, lease_until = :lease_until,
        lease_token = c.lease_token, recipient_masked = c.recipient_masked,
        language = c.language, subject = c.subject, body = c.body,
        encoding = c.encoding, segments = c.segments, updated_at = :now
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:attempts AS integer[]), CAST(:lease_tokens AS uuid[]),
        CAST(:recipients_masked AS text[]), CAST(:languages AS text[]),
        CAST(:subjects AS text[]), CAST(:bodies AS text[]), CAST(:encodings AS text[]),
        CAST(:segments AS integer[])
    ) AS c(id, attempts, lease_token, recipient_masked, language, subject, body, encoding,
           segments)
    WHERE n.id = c.id
    """
)


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
    household_ids = [r.household_id for r in rows if r.household_id]
    contacts = await _contacts(session, household_ids)
    known = await _households(session, [h for h in household_ids if h not in contacts])
    ready: list[_Ready] = []
    for row in rows:
        reason = unreachable_because(contacts.get(row.household_id), known.get(row.household_id))
        prepared = await _prepare(
            session, row, contacts.get(row.household_id), reason, settings, now
        )
        if prepared is not None:
            ready.append(prepared)
    claims = await _render_and_claim(session, ready, settings, now)
    if bucket is not None:
        await execute(
            session,
            buckets.update()
            .where(buckets.c.channel == channel)
            .values(tokens=tokens - len(claims), refilled_at=now),
        )
    return claims


async def _refill(
    session: AsyncSession, channel: Channel, limit: TokenBucket, now: datetime
) -> float:
    """The channel's tokens now (the bucket row stays locked until the claim commits)."""
    await execute(
        session,
        insert(buckets)
        .values(channel=channel, tokens=float(limit.burst), refilled_at=now)
        .on_conflict_do_nothing(),
    )
    bucket = (
        await execute(
            session,
            sa.select(buckets.c.tokens, buckets.c.refilled_at)
            .where(buckets.c.channel == channel)
            .with_for_update(),
        )
    ).one()
    elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
    return float(min(limit.burst, bucket.tokens + elapsed * limit.per_second))


async def _contacts(session: AsyncSession, household_ids: list[UUID]) -> dict[UUID, Contact]:
    if not household_ids:
        return {}
    result = await session.exec(select(Contact).where(col(Contact.household_id).in_(household_ids)))
    return {c.household_id: c for c in result}


async def _households(
    session: AsyncSession, household_ids: list[UUID]
) -> dict[UUID, HouseholdSite]:
    if not household_ids:
        return {}
    result = await session.exec(
        select(HouseholdSite).where(col(HouseholdSite.household_id).in_(household_ids))
    )
    return {h.household_id: h for h in result}


@dataclass
class _Ready:
    """A due row that will be sent: where to, in which language, with which variables."""

    row: Any
    address: str
    language: str
    variables: dict[str, Any]


async def _prepare(
    session: AsyncSession,
    row: Any,
    contact: Contact | None,
    reason: SkipReason | None,
    settings: NotificationsSettings,
    now: datetime,
) -> _Ready | None:
    """Decide one due row: wait or skip (settled here), or send (returned)."""
    variables = dict(row.context)
    if row.audience == Audience.BENEFICIARY:
        if reason is SkipReason.NO_CONTACT and row.contact_deadline and now < row.contact_deadline:
            await _postpone(session, row, row.contact_deadline, now)
            return None
        if reason is not None or contact is None:
            await _skip(session, row, reason or SkipReason.NO_CONTACT, now)
            return None
        if settings.quiet_hours_enabled:
            zone = settings.timezone_of(row.site_id or contact.site_id)
            quiet_end = quiet_until(now, zone, settings.quiet_hours_start, settings.quiet_hours_end)
            if quiet_end is not None:
                await _postpone(session, row, quiet_end, now)
                return None
        variables["case_number"] = contact.case_number
        return _Ready(row, str(contact.phone), row.language or contact.language, variables)
    return _Ready(row, row.address, row.language or settings.fallback_language, variables)


async def _render_and_claim(
    session: AsyncSession, ready: list[_Ready], settings: NotificationsSettings, now: datetime
) -> list[Claim]:
    """Render what is not rendered yet (giving up on a template that cannot render) and mark
    the rest ``sending`` in one statement. The templates are read once for the whole round."""
    fallback = settings.fallback_language
    templates = await stored_templates(
        session=session,
        keys=[
            (r.row.event_type, language)
            for r in ready
            if r.row.body is None
            for language in (r.language, fallback)
        ],
    )
    claims: list[Claim] = []
    columns: dict[str, list[Any]] = {name: [] for name in _CLAIM_COLUMNS}
    for item in ready:
        row = item.row
        language, subject, body = item.language, row.subject, row.body
        stored = (row.language, row.encoding, row.segments)
        if body is None:
            try:
                rendered = render_stored(
                    templates,
                    event_type=row.event_type,
                    language=language,
                    fallback_language=fallback,
                    variables=item.variables,
                )
            except RenderError as exc:
                await _give_up(session, row, f"template_error: {exc}", now)
                continue
            subject, body, language = rendered.subject, rendered.body, rendered.language
            size = sms_size(body) if row.channel == Channel.SMS else None
            stored = (language, size.encoding if size else None, size.segments if size else None)
        claim = Claim(
            row.id,
            uuid4(),
            row.attempts + 1,
            OutgoingMessage(
                idempotency_key=row.id,
                channel=row.channel,
                address=item.address,
                subject=subject,
                body=body,
                language=language,
                event_id=row.event_id,
                event_type=row.event_type,
                household_id=row.household_id,
                site_id=row.site_id,
            ),
        )
        claims.append(claim)
        for name, value in zip(
            _CLAIM_COLUMNS,
            (
                row.id,
                claim.attempt,
                claim.lease_token,
                mask(row.channel, item.address),
                stored[0],
                subject,
                body,
                stored[1],
                stored[2],
            ),
            strict=True,
        ):
            columns[name].append(value)
    if claims:
        await execute(
            session,
            _MARK_SENDING,
            columns
            | {
                "lease_until": now + timedelta(seconds=settings.sending_lease_seconds),
                "now": now,
            },
        )
    return claims


_CLAIM_COLUMNS = (
    "ids",
    "attempts",
    "lease_tokens",
    "recipients_masked",
    "languages",
    "subjects",
    "bodies",
    "encodings",
    "segments",
)


async def _postpone(session: AsyncSession, row: Any, until: datetime, now: datetime) -> None:
    status = Status.QUEUED if row.status == Status.SENDING else row.status
    await execute(
        session,
        notifications.update()
        .where(notifications.c.id == row.id)
        .values(
            status=status, next_attempt_at=until, lease_until=None, lease_token=None, updated_at=now
        ),
    )


async def _skip(session: AsyncSession, row: Any, reason: SkipReason, now: datetime) -> None:
    await execute(
        session,
        notifications.update()
        .where(notifications.c.id == row.id)
        .values(
            status=Status.SKIPPED,
            skip_reason=reason,
            lease_until=None,
            lease_token=None,
            updated_at=now,
        ),
    )
    metrics.after_commit(session, metrics.NOTIFICATIONS.labels(row.channel, Status.SKIPPED).inc)


async def _give_up(session: AsyncSession, row: Any, error: str, now: datetime) -> None:
    await execute(
        session,
        notifications.update()
        .where(notifications.c.id == row.id)
        .values(
            status=Status.DEAD,
            last_error=error[:500],
            lease_until=None,
            lease_token=None,
            updated_at=now,
        ),
    )
    await _announce_dead(
        session,
        row.id,
        row.event_id,
        row.event_type,
        row.channel,
        row.attempts,
        row.household_id,
        error,
    )


async def _announce_dead(
    session: AsyncSession,
    notification_id: UUID,
    event_id: UUID,
    event_type: str,
    channel: str,
    attempts: int,
    household_id: UUID | None,
    error: str,
) -> None:
    await add_event(
        session,
        NotificationDead(
            notification_id=notification_id,
            event_id=event_id,
            source_event_type=event_type,
            channel=channel,
            attempts=attempts,
            household_id=household_id,
            error_code=error.split(":", 1)[0][:100],
        ),
        key=str(notification_id),
        source=SOURCE,
    )
    metrics.after_commit(session, metrics.NOTIFICATIONS.labels(channel, Status.DEAD).inc)
    log.warning(
        "notification dead",
        extra={"notification_id": str(notification_id), "channel": channel, "error": error[:200]},
    )


# --- recording outcomes ---------------------------------------------------------------------


# Built once: a round's deliveries are recorded together, each only by its lease holder.
_MARK_DELIVERED = sa.text(
    """
    UPDATE notification AS n
    SET status = 'delivered', delivered_at = :now, lease_until = NULL, lease_token = NULL,
        last_error = NULL, updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:lease_tokens AS uuid[])) AS c(id, lease_token)
    WHERE n.id = c.id AND n.lease_token = c.lease_token AND n.status = 'sending'
    RETURNING n.id, n.event_id, n.event_type, n.channel, n.household_id
    """
)


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
        await execute(
            session,
            _MARK_DELIVERED,
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
        await _give_up(session, row, error.code, now)
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


# --- reading and retrying -------------------------------------------------------------------


def _visible_to(principal: Principal) -> sa.ColumnElement[bool] | None:
    """None when the principal sees every site; else only their sites' notifications."""
    if Role.ADMIN in principal.roles or ALL_SITES in principal.sites:
        return None
    visible: sa.ColumnElement[bool] = notifications.c.site_id.in_(sorted(principal.sites))
    return visible


async def get(*, session: AsyncSession, notification_id: UUID, principal: Principal) -> Any:
    query = sa.select(notifications).where(notifications.c.id == notification_id)
    row = (await execute(session, query)).first()
    if row is None:
        raise NotificationNotFound(f"No notification {notification_id}.")
    if not principal.can_access_site(row.site_id):
        raise NotificationOutOfScope(f"No notification {notification_id}.")
    return row


async def page(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID | None,
    status: Status | None,
    channel: Channel | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Newest first (ids are UUIDv7, so they sort by creation)."""
    query = sa.select(notifications)
    scope = _visible_to(principal)
    if scope is not None:
        query = query.where(scope)
    if household_id is not None:
        query = query.where(notifications.c.household_id == household_id)
    if status is not None:
        query = query.where(notifications.c.status == status)
    if channel is not None:
        query = query.where(notifications.c.channel == channel)
    if cursor:
        query = query.where(notifications.c.id < decode_id_cursor(cursor))
    result = await execute(session, query.order_by(notifications.c.id.desc()).limit(limit + 1))
    rows: list[Any] = list(result.all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_id_cursor(rows[-1].id) if more and rows else None


async def retry(*, session: AsyncSession, notification_id: UUID, now: datetime) -> Any:
    """Queue a dead, failed or skipped notification again, with a fresh attempt budget.
    It keeps its id, so channels that honour the idempotency key still deliver it once."""
    row = (
        await execute(
            session,
            sa.select(notifications).where(notifications.c.id == notification_id).with_for_update(),
        )
    ).first()
    if row is None:
        raise NotificationNotFound(f"No notification {notification_id}.")
    if row.status not in RETRYABLE:
        raise NotRetryable(
            f"A {row.status} notification cannot be retried.",
            notification_status=row.status,
            retryable_statuses=list(RETRYABLE),
        )
    await execute(
        session,
        notifications.update()
        .where(notifications.c.id == notification_id)
        .values(
            status=Status.QUEUED,
            skip_reason=None,
            attempts=0,
            next_attempt_at=now,
            contact_deadline=None,
            lease_until=None,
            lease_token=None,
            updated_at=now,
        ),
    )
    await households.wake_senders(session)
    updated = (
        await execute(
            session, sa.select(notifications).where(notifications.c.id == notification_id)
        )
    ).one()
    return updated

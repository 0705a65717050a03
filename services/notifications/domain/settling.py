"""Settling a notification that will not be sent now: postponed (waiting for its contact or
the end of quiet hours), skipped (its household cannot be contacted), or dead (given up, and
announced with ``NotificationDead``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications.domain.sql import execute
from services.notifications.models import Notification, SkipReason, Status, table_of
from shared import metrics
from shared.events.notifications import NotificationDead
from shared.outbox import add_event

log = logging.getLogger(__name__)

SOURCE = "haven/notifications"

notifications = table_of(Notification)


async def postpone(session: AsyncSession, row: Any, until: datetime, now: datetime) -> None:
    """Due again at ``until``; a claimed row gives up its lease and is queued again."""
    status = Status.QUEUED if row.status == Status.SENDING else row.status
    await execute(
        session,
        notifications.update()
        .where(notifications.c.id == row.id)
        .values(
            status=status, next_attempt_at=until, lease_until=None, lease_token=None, updated_at=now
        ),
    )


async def skip(session: AsyncSession, row: Any, reason: SkipReason, now: datetime) -> None:
    """Not sent, for ``reason``; an admin may queue it again."""
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


async def give_up(session: AsyncSession, row: Any, error: str, now: datetime) -> None:
    """Dead after ``error``: no more attempts, ``NotificationDead`` staged."""
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

"""Notifications as staff see them: read (site-scoped, audited) and queued again by an admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications.domain import audits, households
from services.notifications.domain.errors import (
    NotificationNotFound,
    NotificationOutOfScope,
    NotRetryable,
)
from services.notifications.domain.recipients import ALL_SITES
from services.notifications.domain.sql import execute
from services.notifications.models import Notification, Status, table_of
from services.notifications.settings import Channel
from shared.auth import Principal, Role
from shared.pagination import decode_id_cursor, encode_id_cursor

RETRYABLE = (Status.DEAD, Status.FAILED, Status.SKIPPED)

notifications = table_of(Notification)


def _visible_to(principal: Principal) -> sa.ColumnElement[bool] | None:
    """None when the principal sees every site; else only their sites' notifications."""
    if Role.ADMIN in principal.roles or ALL_SITES in principal.sites:
        return None
    visible: sa.ColumnElement[bool] = notifications.c.site_id.in_(sorted(principal.sites))
    return visible


async def get(*, session: AsyncSession, notification_id: UUID, principal: Principal) -> Any:
    """One notification (the read is audited); another site's is not found."""
    query = sa.select(notifications).where(notifications.c.id == notification_id)
    row = (await execute(session, query)).first()
    if row is None:
        raise NotificationNotFound(f"No notification {notification_id}.")
    if not principal.can_access_site(row.site_id):
        raise NotificationOutOfScope(f"No notification {notification_id}.")
    await audits.record(
        session,
        principal=principal,
        action="notification.read",
        resource_type="notification",
        resource_id=str(notification_id),
    )
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
    """Newest first (ids are UUIDv7, so they sort by creation); the read is audited."""
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
    await audits.record(
        session,
        principal=principal,
        action="notification.list",
        resource_type="household" if household_id else "notification",
        resource_id=str(household_id) if household_id else None,
    )
    return rows, encode_id_cursor(rows[-1].id) if more and rows else None


async def retry(
    *, session: AsyncSession, principal: Principal, notification_id: UUID, now: datetime
) -> Any:
    """Queue a dead, failed or skipped notification again, with a fresh attempt budget
    (audited). It keeps its id, so channels that honour the idempotency key still deliver
    it once."""
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
    await audits.record(
        session,
        principal=principal,
        action="notification.retry",
        resource_type="notification",
        resource_id=str(notification_id),
    )
    updated = (
        await execute(
            session, sa.select(notifications).where(notifications.c.id == notification_id)
        )
    ).one()
    return updated

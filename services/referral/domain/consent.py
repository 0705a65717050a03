"""Consent follow-up tasks: without referral-sharing consent a caseworker asks, nobody refers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain.common import Actor, emit, new_id, record_audit
from services.referral.domain.vocabulary import ConsentTaskStatus, ServiceType, on_the_wire
from services.referral.models import ConsentTask
from shared.events.referral import ConsentFollowUpRequested


async def open_task(
    session: AsyncSession, *, household_id: UUID, service_type: str
) -> ConsentTask | None:
    return (
        await session.exec(
            select(ConsentTask)
            .where(ConsentTask.household_id == household_id)
            .where(ConsentTask.service_type == service_type)
            .where(ConsentTask.status == ConsentTaskStatus.OPEN)
            .with_for_update()
        )
    ).first()


async def request_consent(
    *,
    session: AsyncSession,
    household_id: UUID,
    site_id: str,
    service_type: str,
    actor: Actor,
    now: datetime,
) -> ConsentTask | None:
    """Open a task (and tell caseworkers) unless one is already open; None when it was."""
    if await open_task(session, household_id=household_id, service_type=service_type):
        return None
    task = open_new(
        session=session,
        household_id=household_id,
        site_id=site_id,
        service_type=service_type,
        now=now,
    )
    await session.flush()
    await announce(session, task, actor=actor)
    return task


def open_new(
    *, session: AsyncSession, household_id: UUID, site_id: str, service_type: str, now: datetime
) -> ConsentTask:
    """A new open task of a household known to have none open for ``service_type``, added to
    the session (written at its next flush, with any others added meanwhile)."""
    task = ConsentTask(
        id=new_id(),
        household_id=household_id,
        site_id=site_id,
        service_type=service_type,
        status=ConsentTaskStatus.OPEN,
        created_at=now,
    )
    session.add(task)
    return task


async def announce(session: AsyncSession, task: ConsentTask, *, actor: Actor) -> None:
    """Tell caseworkers of a new task, and audit its creation."""
    service_type, sensitive = on_the_wire(task.service_type)
    await emit(
        session,
        ConsentFollowUpRequested(
            task_id=task.id,
            household_id=task.household_id,
            service_type=service_type,
            site_id=task.site_id,
            sensitive=sensitive,
        ),
        household_id=task.household_id,
        actor=actor,
    )
    await record_audit(
        session,
        actor,
        action="consent_task.create",
        resource_type="consent_task",
        resource_id=task.id,
    )


async def close_tasks(
    *,
    session: AsyncSession,
    household_id: UUID,
    status: ConsentTaskStatus,
    reason: str,
    actor: Actor,
    now: datetime,
    service_types: Collection[str] | None = None,
) -> list[ConsentTask]:
    """Close the household's open tasks (of some service types only, when given)."""
    query = (
        select(ConsentTask)
        .where(ConsentTask.household_id == household_id)
        .where(ConsentTask.status == ConsentTaskStatus.OPEN)
        .order_by(col(ConsentTask.id))
        .with_for_update()
    )
    if service_types is not None:
        query = query.where(col(ConsentTask.service_type).in_(list(service_types)))
    tasks = list((await session.exec(query)).all())
    for task in tasks:
        task.status = status
        task.closed_at = now
        task.closed_reason = reason
        session.add(task)
        await record_audit(
            session,
            actor,
            action=f"consent_task.{status}",
            resource_type="consent_task",
            resource_id=task.id,
            reason=reason,
        )
    await session.flush()
    return tasks


async def page(
    session: AsyncSession,
    *,
    sites: Collection[str] | None,
    after: UUID | None,
    limit: int,
    status: str | None,
    household_id: UUID | None,
    actor: Actor,
    sensitive_visible: bool = False,
) -> list[ConsentTask]:
    """Tasks in ``sites`` (None: every site), oldest first; the listing is audited. Tasks of
    sensitive service types only when ``sensitive_visible`` (protection focal points)."""
    query = select(ConsentTask).order_by(col(ConsentTask.id)).limit(limit)
    if sites is not None:
        query = query.where(col(ConsentTask.site_id).in_(list(sites)))
    if not sensitive_visible:
        sensitive = [str(t) for t in ServiceType if t.sensitive]
        query = query.where(col(ConsentTask.service_type).not_in(sensitive))
    if after is not None:
        query = query.where(col(ConsentTask.id) > after)
    if status is not None:
        query = query.where(ConsentTask.status == status)
    if household_id is not None:
        query = query.where(ConsentTask.household_id == household_id)
    tasks = list((await session.exec(query)).all())
    await record_audit(
        session, actor, action="consent_task.list", resource_type="consent_task", resource_id=None
    )
    return tasks


async def delete_for_household(session: AsyncSession, household_id: UUID) -> int:
    result = await session.exec(
        sa.delete(ConsentTask).where(col(ConsentTask.household_id) == household_id)
    )
    return int(result.rowcount or 0)

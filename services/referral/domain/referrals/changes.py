"""The building blocks of every change to a referral: its row, history steps, event fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral import queries
from services.referral.domain.common import Actor
from services.referral.domain.states import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Action,
    Status,
    next_status,
)
from services.referral.domain.vocabulary import on_the_wire
from services.referral.models import (
    HouseholdView,
    Referral,
    ReferralHistory,
)
from shared.db import run


async def lock_household(session: AsyncSession, household_id: UUID) -> HouseholdView | None:
    return (
        await session.exec(
            select(HouseholdView)
            .where(HouseholdView.household_id == household_id)
            .with_for_update()
        )
    ).first()


async def open_referral(
    session: AsyncSession, *, household_id: UUID, service_type: str
) -> Referral | None:
    return (
        await session.exec(
            select(Referral)
            .where(Referral.household_id == household_id)
            .where(Referral.service_type == service_type)
            .where(col(Referral.status).in_([str(s) for s in OPEN_STATUSES]))
            .with_for_update()
        )
    ).first()


def event_fields(referral: Referral) -> dict[str, Any]:
    """The referral as its events carry it (a sensitive service type is not named)."""
    service_type, _ = on_the_wire(referral.service_type)
    return {
        "referral_id": referral.id,
        "household_id": referral.household_id,
        "service_type": service_type,
        "urgency": referral.urgency,
        "status": referral.status,
        "provider_id": referral.provider_id,
        "due_at": referral.due_at,
        "site_id": referral.site_id,
        "sensitive": referral.sensitive,
    }


def apply_action(referral: Referral, action: Action, now: datetime) -> Status:
    """Move the referral along the state machine (409 if the table forbids it); return the
    status it had."""
    previous = Status(referral.status)
    target = next_status(previous, action)
    referral.status = target
    referral.updated_at = now
    if target in TERMINAL_STATUSES:
        referral.closed_at = now
    if target != Status.SENT:
        referral.next_escalation_at = None
    return previous


def history_step(
    referral: Referral,
    *,
    action: str,
    from_status: Status | None,
    to_status: str,
    actor: Actor,
    now: datetime,
    provider_id: UUID | None = None,
    reason_code: str | None = None,
    note: str | None = None,
    tier: int | None = None,
) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "at": now,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor.sub,
        "provider_id": provider_id,
        "reason_code": reason_code,
        "note": note,
        "tier": tier,
    }


async def save(
    session: AsyncSession,
    referral: Referral,
    *,
    action: str,
    from_status: Status | None,
    actor: Actor,
    now: datetime,
    provider_id: UUID | None = None,
    reason_code: str | None = None,
    note: str | None = None,
    tier: int | None = None,
    new: bool = False,
) -> None:
    """Write the referral's row and one step of its history (before any of its events); a
    ``new`` referral in one statement with its creation step (see :func:`write_created`)."""
    step = history_step(
        referral,
        action=action,
        from_status=from_status,
        to_status=referral.status,
        actor=actor,
        now=now,
        provider_id=provider_id,
        reason_code=reason_code,
        note=note,
        tier=tier,
    )
    if new:
        await write_created(session, referral, step, actor=actor)
        return
    session.add(referral)
    session.add(ReferralHistory(**step))
    await session.flush()


_REFERRAL_COLUMNS = tuple(Referral.__table__.c.keys())  # type: ignore[attr-defined]


def created_params(referral: Referral, routed: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
    """What :data:`queries.INSERT_CREATED` binds for a new referral and its ``routed`` step."""
    created = history_step(
        referral,
        action="create",
        from_status=None,
        to_status=Status.CREATED,
        actor=actor,
        now=referral.created_at,
    )
    params = {name: getattr(referral, name) for name in _REFERRAL_COLUMNS}
    params.update({f"{name}_created": value for name, value in created.items()})
    params.update({f"{name}_routed": value for name, value in routed.items()})
    return params


async def write_created(
    session: AsyncSession, referral: Referral, routed: dict[str, Any], *, actor: Actor
) -> None:
    """Insert a new referral as routed, with its creation step and ``routed`` step."""
    await run(session, queries.INSERT_CREATED, created_params(referral, routed, actor=actor))
    # Held by the session as if loaded: a later change in this transaction updates the row.
    make_transient_to_detached(referral)
    session.add(referral)

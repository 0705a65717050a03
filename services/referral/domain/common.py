"""What every domain module uses: who acts, how events and audit records are staged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from shared import audit
from shared.auth import Principal
from shared.events.envelope import Envelope, EventPayload, new_event_id
from shared.outbox import add_event

SERVICE = "referral"
SOURCE = "haven/referral"

SYSTEM = Principal(sub="system:referral", roles=frozenset(), sites=frozenset({"*"}))
"""The service itself, acting on events and deadlines."""


@dataclass(frozen=True)
class Actor:
    """Who causes a change, and the event that caused it (for ``ce_causationid``)."""

    principal: Principal
    causation_id: str | None = None

    @property
    def sub(self) -> str:
        return self.principal.sub


SYSTEM_ACTOR = Actor(SYSTEM)


def caused_by(envelope: Envelope[Any]) -> Actor:
    """The service acts, because of this event."""
    return Actor(SYSTEM, causation_id=str(envelope.id))


def new_id() -> UUID:
    """A time-ordered UUIDv7: ids sort by creation, so they are also the pagination key."""
    return new_event_id()


async def emit(
    session: AsyncSession, payload: EventPayload, *, household_id: UUID, actor: Actor
) -> None:
    """Stage an event on the referral topic, keyed by household, in the caller's transaction."""
    await add_event(
        session,
        payload,
        key=str(household_id),
        source=SOURCE,
        actor=actor.sub,
        causation_id=actor.causation_id,
    )


async def record_audit(
    session: AsyncSession,
    actor: Actor,
    *,
    action: str,
    resource_type: str,
    resource_id: UUID | None,
    reason: str | None = None,
) -> None:
    await audit.record(
        session,
        service=SERVICE,
        principal=actor.principal,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id else None,
        reason=reason,
    )


# --- pagination ----------------------------------------------------------------------------

MAX_PAGE = 200
DEFAULT_PAGE = 50

"""Audit records: who did what to which resource, written in the change's own transaction.

An audited change cannot commit without its record, because the record is an outbox row of
the same transaction. Records never hold personal values: ids, actions and outcomes only.
"""

from __future__ import annotations

import re
from enum import StrEnum

from opentelemetry import trace
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.auth import Principal
from shared.events.audit import AuditEvent
from shared.events.envelope import utcnow
from shared.outbox import add_event
from shared.telemetry import correlation_id_var


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    FAILED = "failed"


REASON_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class FreeTextInAudit(ValueError):
    """An audit record was given free text as its reason (a bug in the caller)."""


async def record(
    session: AsyncSession,
    *,
    service: str,
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: str | None,
    outcome: Outcome = Outcome.SUCCESS,
    reason: str | None = None,
) -> AuditEvent:
    """Stage an audit record in the caller's transaction (e.g. action="household.update").

    ``reason`` is a code (``consent_override``, ``not-in-your-sites``, a SKU): the audit trail
    is permanent, so free text (justifications, notes), which may name people, stays with the
    record it explains; :class:`FreeTextInAudit` refuses anything else.
    """
    if reason is not None and not REASON_CODE.fullmatch(reason):
        raise FreeTextInAudit(f"audit reason must be a code, not free text ({len(reason)} chars)")
    span = trace.get_current_span().get_span_context()
    event = AuditEvent(
        service=service,
        actor_sub=principal.sub if principal else "anonymous",
        actor_role=(principal.primary_role if principal else None),
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        reason=reason,
        occurred_at=utcnow(),
        correlation_id=correlation_id_var.get(),
        trace_id=format(span.trace_id, "032x") if span.is_valid else None,
    )
    await add_event(
        session,
        event,
        key=service,
        source=f"haven/{service}",
        actor=principal.sub if principal else None,
        subject=f"{resource_type}/{resource_id}" if resource_id else resource_type,
    )
    return event

"""The audit trail: who did what, never personal values."""

from datetime import datetime

from pydantic import Field

from shared.events.envelope import EventPayload


class AuditEvent(EventPayload):
    """One audited action. ``sequence``/``previous_hash``/``hash`` chain a service's records."""

    service: str
    chain_id: str | None = None
    sequence: int | None = Field(default=None, ge=1)
    actor_sub: str
    actor_role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    outcome: str
    reason: str | None = None
    occurred_at: datetime
    correlation_id: str | None = None
    trace_id: str | None = None
    previous_hash: str | None = None
    hash: str | None = None

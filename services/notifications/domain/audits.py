"""This service's audit records: who read or changed what, staged in the caller's transaction."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from shared import audit
from shared.auth import Principal

SERVICE = "notifications"


async def record(
    session: AsyncSession,
    *,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: str | None,
) -> None:
    """One successful read or change (refusals are audited by the shared runtime)."""
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
    )

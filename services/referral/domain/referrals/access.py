"""Who may see which referral: providers their organisation's, staff their sites'."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain.common import Actor, record_audit
from services.referral.domain.errors import (
    ReferralNotFound,
    ReferralOutOfScope,
)
from services.referral.models import (
    Referral,
)
from shared.auth import Principal, Role


def sees_as_provider(principal: Principal) -> bool:
    """Provider staff see their organisation's referrals only, through the restricted view."""
    return Role.PROVIDER in principal.roles and not principal.has_any(
        Role.CASEWORKER, Role.MANAGER, Role.ADMIN
    )


def sees_every_sensitive(principal: Principal) -> bool:
    """Protection focal points see sensitive referrals and tasks (within their sites)."""
    return Role.PROTECTION_FOCAL_POINT in principal.roles


def may_see(principal: Principal, referral: Referral) -> bool:
    """A sensitive referral is staff's to see only for the one who made it and protection
    focal points (its provider reaches it through :func:`load_for_provider`)."""
    if not referral.sensitive or sees_every_sensitive(principal):
        return True
    return referral.caseworker_sub is not None and referral.caseworker_sub == principal.sub


def provider_org(principal: Principal) -> UUID | None:
    try:
        return UUID(principal.org) if principal.org else None
    except ValueError:
        return None


async def _get(session: AsyncSession, referral_id: UUID, *, lock: bool) -> Referral | None:
    query = select(Referral).where(Referral.id == referral_id)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def load_for_provider(
    session: AsyncSession, referral_id: UUID, principal: Principal, *, lock: bool = False
) -> Referral:
    """The referral if it was sent to the caller's organisation; 404 otherwise."""
    referral = await _get(session, referral_id, lock=lock)
    detail = f"Referral {referral_id} is not among your organisation's referrals."
    if referral is None:
        raise ReferralNotFound(detail)
    org = provider_org(principal)
    if org is None or referral.provider_id != org:
        raise ReferralOutOfScope(detail)
    return referral


async def load_for_staff(
    session: AsyncSession, referral_id: UUID, principal: Principal, *, lock: bool = False
) -> Referral:
    """The referral if it belongs to one of the caller's sites and, when sensitive, is the
    caller's to see (:func:`may_see`); 404 otherwise, audited as refused."""
    referral = await _get(session, referral_id, lock=lock)
    detail = f"Referral {referral_id} was not found."
    if referral is None:
        raise ReferralNotFound(detail)
    if not principal.can_access_site(referral.site_id) or not may_see(principal, referral):
        raise ReferralOutOfScope(detail)
    return referral


async def read(session: AsyncSession, referral_id: UUID, principal: Principal) -> Referral:
    """One referral the caller may see (providers: their organisation's), audited as read."""
    if sees_as_provider(principal):
        referral = await load_for_provider(session, referral_id, principal)
    else:
        referral = await load_for_staff(session, referral_id, principal)
    await record_audit(
        session,
        Actor(principal),
        action="referral.read",
        resource_type="referral",
        resource_id=referral.id,
    )
    return referral


def visible_sites(principal: Principal) -> Collection[str] | None:
    """The sites a staff member may see; None means every site."""
    if Role.ADMIN in principal.roles or "*" in principal.sites:
        return None
    return principal.sites

"""Who receives what. Beneficiaries: their household's contact, only with consent and a
phone. Staff: the directory (role and site, or provider for provider contacts → e-mail or
webhook), managed by admins."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications.domain import audits
from services.notifications.domain.errors import (
    InvalidAddress,
    ProviderContactsForAdmins,
    SiteOutOfScope,
    StaffRecipientExists,
    StaffRecipientNotFound,
    StaffRecipientOutOfScope,
)
from services.notifications.domain.sql import execute
from services.notifications.models import (
    EMAIL_ADDRESS,
    WEBHOOK_URL,
    Contact,
    HouseholdSite,
    SkipReason,
    StaffRecipient,
    StaffRecipientCreate,
    table_of,
)
from services.notifications.settings import Channel, StaffRole
from shared.auth import Principal, Role
from shared.events.envelope import new_event_id
from shared.pagination import decode_id_cursor, encode_id_cursor

ALL_SITES = "*"
# The patterns the document gives (models.StaffRecipientCreate), checked here as well.
_EMAIL = re.compile(EMAIL_ADDRESS)
_WEBHOOK = re.compile(WEBHOOK_URL)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ASCII digits, as the SQL in intake.py


def beneficiary_key(household_id: UUID) -> str:
    return f"household:{household_id}"


def staff_key(channel: str, address: str) -> str:
    """Staff are keyed by a digest of their address: the same person listed under two roles
    gets one message per event, and webhook URLs (which may hold secrets) stay out of keys."""
    digest = hashlib.sha256(f"{channel}:{address.strip().lower()}".encode()).hexdigest()
    return f"staff:{digest[:32]}"


def unreachable_because(
    contact: Contact | None, household: HouseholdSite | None = None
) -> SkipReason | None:
    """Why a beneficiary cannot be sent an SMS now (None: they can). Only the contact can
    allow a message; the household's registration can only refuse one early."""
    if contact is None:
        if household is not None and not household.contact_consent:
            return SkipReason.NO_CONSENT
        return SkipReason.NO_CONTACT
    if not contact.contact_consent:
        return SkipReason.NO_CONSENT
    if not contact.phone or not _E164.fullmatch(contact.phone):
        return SkipReason.NO_PHONE
    return None


@dataclass(frozen=True)
class StaffTarget:
    channel: Channel
    address: str
    language: str


async def staff_for(
    *,
    session: AsyncSession,
    role: StaffRole,
    site_id: str | None,
    provider_id: UUID | None = None,
    staff_sub: str | None = None,
) -> list[StaffTarget]:
    """The directory entries for ``role`` at ``site_id`` (or every site). Provider contacts
    are chosen by provider instead of site; a named person (``staff_sub``) listed in the
    directory is told alone, else everyone of the role at the site."""
    query = select(StaffRecipient).where(col(StaffRecipient.role) == role)
    if role is StaffRole.PROVIDER_CONTACT:
        if provider_id is None:
            return []
        query = query.where(col(StaffRecipient.provider_id) == provider_id)
    else:
        # A named person is looked up among the site's entries too: an entry of another
        # site naming them cannot draw this site's alerts away.
        sites = [ALL_SITES] + ([site_id] if site_id else [])
        query = query.where(col(StaffRecipient.site_id).in_(sites))
        if staff_sub is not None:
            named = await session.exec(
                query.where(col(StaffRecipient.staff_sub) == staff_sub).order_by(
                    col(StaffRecipient.id)
                )
            )
            targets = [StaffTarget(Channel(r.channel), r.address, r.language) for r in named]
            if targets:
                return targets
    rows = await session.exec(query.order_by(col(StaffRecipient.id)))
    return [StaffTarget(Channel(r.channel), r.address, r.language) for r in rows]


def check_address(channel: Channel, address: str) -> None:
    if channel is Channel.EMAIL:
        if not _EMAIL.fullmatch(address):
            raise InvalidAddress("An e-mail recipient needs an address like name@example.org.")
        return
    if channel is Channel.WEBHOOK:
        if not _WEBHOOK.fullmatch(address):
            raise InvalidAddress(
                "A webhook address must be an http(s) URL with a host and no credentials."
            )
        try:
            url = httpx.URL(address)
        except httpx.InvalidURL as exc:
            raise InvalidAddress("The webhook address is not a valid URL.") from exc
        if url.scheme not in ("http", "https") or not url.host or url.userinfo:
            raise InvalidAddress(
                "A webhook address must be an http(s) URL with a host and no credentials."
            )
        return
    raise InvalidAddress("Staff receive e-mail or webhooks; SMS is for beneficiaries.")


async def add_staff(
    *, session: AsyncSession, entry: StaffRecipientCreate, principal: Principal, now: datetime
) -> StaffRecipient:
    """Add a directory entry (audited); the same role, site, channel and address twice is
    a conflict."""
    check_address(entry.channel, entry.address)
    if entry.role is StaffRole.PROVIDER_CONTACT and entry.provider_id is None:
        raise InvalidAddress("A provider_contact entry needs the provider_id it speaks for.")
    if Role.ADMIN not in principal.roles:
        if entry.role is StaffRole.PROVIDER_CONTACT:
            raise ProviderContactsForAdmins(
                "Provider contacts hear of their referrals at every site: an admin lists them."
            )
        if not principal.can_access_site(entry.site_id):
            raise SiteOutOfScope(entry.site_id)
    row = {
        "id": new_event_id(),
        "role": entry.role,
        "site_id": entry.site_id,
        "channel": entry.channel,
        "address": entry.address,
        "language": entry.language,
        "provider_id": entry.provider_id,
        "staff_sub": entry.staff_sub,
        "created_at": now,
        "created_by": principal.sub,
    }
    table = table_of(StaffRecipient)
    inserted = await execute(
        session, insert(table).values(**row).on_conflict_do_nothing().returning(table.c.id)
    )
    if inserted.first() is None:
        raise StaffRecipientExists(
            f"A {entry.role} entry for site {entry.site_id} with this {entry.channel} "
            "address already exists."
        )
    created = await session.get(StaffRecipient, row["id"])
    assert created is not None
    await audits.record(
        session,
        principal=principal,
        action="staff_recipient.create",
        resource_type="staff_recipient",
        resource_id=str(created.id),
    )
    return created


def _visible_to(principal: Principal) -> sa.ColumnElement[bool] | None:
    """None when the principal sees every site's entries; else only those of their sites
    (entries for every site, "*", are then not theirs to see or change)."""
    if Role.ADMIN in principal.roles or ALL_SITES in principal.sites:
        return None
    visible: sa.ColumnElement[bool] = col(StaffRecipient.site_id).in_(sorted(principal.sites))
    return visible


async def _visible_entry(
    session: AsyncSession, principal: Principal, recipient_id: UUID
) -> StaffRecipient:
    entry = await session.get(StaffRecipient, recipient_id)
    if entry is None:
        raise StaffRecipientNotFound(f"No staff recipient {recipient_id}.")
    if not principal.can_access_site(entry.site_id):
        raise StaffRecipientOutOfScope(f"No staff recipient {recipient_id}.")
    return entry


async def get_staff(
    *, session: AsyncSession, principal: Principal, recipient_id: UUID
) -> StaffRecipient:
    """One directory entry of the caller's sites (the read is audited)."""
    entry = await _visible_entry(session, principal, recipient_id)
    await audits.record(
        session,
        principal=principal,
        action="staff_recipient.read",
        resource_type="staff_recipient",
        resource_id=str(recipient_id),
    )
    return entry


async def list_staff(
    *,
    session: AsyncSession,
    principal: Principal,
    role: StaffRole | None,
    site_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[StaffRecipient], str | None]:
    """A page of the directory entries of the caller's sites, oldest first (ids are
    UUIDv7); the read is audited."""
    query = select(StaffRecipient)
    scope = _visible_to(principal)
    if scope is not None:
        query = query.where(scope)
    if role is not None:
        query = query.where(col(StaffRecipient.role) == role)
    if site_id is not None:
        query = query.where(col(StaffRecipient.site_id) == site_id)
    if cursor:
        query = query.where(col(StaffRecipient.id) > decode_id_cursor(cursor))
    found = list(await session.exec(query.order_by(col(StaffRecipient.id)).limit(limit + 1)))
    page = found[:limit]
    await audits.record(
        session,
        principal=principal,
        action="staff_recipient.list",
        resource_type="staff_recipient",
        resource_id=None,
    )
    return page, encode_id_cursor(page[-1].id) if len(found) > limit and page else None


async def remove_staff(*, session: AsyncSession, principal: Principal, recipient_id: UUID) -> None:
    """Remove a directory entry of the caller's sites (audited)."""
    entry = await _visible_entry(session, principal, recipient_id)
    await session.delete(entry)
    await session.flush()
    await audits.record(
        session,
        principal=principal,
        action="staff_recipient.delete",
        resource_type="staff_recipient",
        resource_id=str(recipient_id),
    )

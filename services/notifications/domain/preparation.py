"""Getting claimed notifications ready: each due row waits, is skipped, or is rendered and
marked ``sending`` under a new lease (one statement for the round)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications import queries
from services.notifications.channels.base import OutgoingMessage
from services.notifications.domain.masking import mask
from services.notifications.domain.recipients import unreachable_because
from services.notifications.domain.sandbox import RenderError
from services.notifications.domain.schedule import quiet_until
from services.notifications.domain.settling import give_up, postpone, skip
from services.notifications.domain.sms import sms_size
from services.notifications.domain.templates import (
    Stored,
    TemplateKey,
    render_stored,
    stored_templates,
)
from services.notifications.models import Audience, Contact, HouseholdSite, SkipReason
from services.notifications.settings import Channel, NotificationsSettings
from shared.db import run


@dataclass(frozen=True)
class Claim:
    """A notification this sender holds until ``lease_token`` is replaced."""

    notification_id: UUID
    lease_token: UUID
    attempt: int
    message: OutgoingMessage


@dataclass
class _Ready:
    """A due row that will be sent: where to, in which language, with which variables."""

    row: Any
    address: str
    language: str
    variables: dict[str, Any]


async def ready_to_send(
    session: AsyncSession, rows: list[Any], settings: NotificationsSettings, now: datetime
) -> list[Claim]:
    """Decide each claimed row (wait, skip or send) from its household's contact and site,
    read for all the rows at once, then render and mark ``sending`` those that go."""
    household_ids = [r.household_id for r in rows if r.household_id]
    contacts = await _contacts(session, household_ids)
    known = await _households(session, [h for h in household_ids if h not in contacts])
    ready: list[_Ready] = []
    for row in rows:
        reason = unreachable_because(contacts.get(row.household_id), known.get(row.household_id))
        prepared = await _prepare(
            session, row, contacts.get(row.household_id), reason, settings, now
        )
        if prepared is not None:
            ready.append(prepared)
    return await _render_and_claim(session, ready, settings, now)


async def _contacts(session: AsyncSession, household_ids: list[UUID]) -> dict[UUID, Contact]:
    if not household_ids:
        return {}
    result = await session.exec(select(Contact).where(col(Contact.household_id).in_(household_ids)))
    return {c.household_id: c for c in result}


async def _households(
    session: AsyncSession, household_ids: list[UUID]
) -> dict[UUID, HouseholdSite]:
    if not household_ids:
        return {}
    result = await session.exec(
        select(HouseholdSite).where(col(HouseholdSite.household_id).in_(household_ids))
    )
    return {h.household_id: h for h in result}


async def _prepare(
    session: AsyncSession,
    row: Any,
    contact: Contact | None,
    reason: SkipReason | None,
    settings: NotificationsSettings,
    now: datetime,
) -> _Ready | None:
    """Decide one due row: wait or skip (settled here), or send (returned)."""
    variables = dict(row.context)
    if row.audience == Audience.BENEFICIARY:
        if reason is SkipReason.NO_CONTACT and row.contact_deadline and now < row.contact_deadline:
            await postpone(session, row, row.contact_deadline, now)
            return None
        if reason is not None or contact is None:
            await skip(session, row, reason or SkipReason.NO_CONTACT, now)
            return None
        if settings.quiet_hours_enabled:
            zone = settings.timezone_of(row.site_id or contact.site_id)
            quiet_end = quiet_until(now, zone, settings.quiet_hours_start, settings.quiet_hours_end)
            if quiet_end is not None:
                await postpone(session, row, quiet_end, now)
                return None
        variables["case_number"] = contact.case_number
        return _Ready(row, str(contact.phone), row.language or contact.language, variables)
    return _Ready(row, row.address, row.language or settings.fallback_language, variables)


@dataclass(frozen=True)
class _Text:
    """What a row is sent as: its subject, body, language and (SMS) encoding and size."""

    subject: str | None
    body: str
    language: str
    stored_language: str | None
    encoding: str | None
    segments: int | None


def _text_of(item: _Ready, templates: dict[TemplateKey, Stored], fallback_language: str) -> _Text:
    """The row's text as rendered at its first attempt, else rendered now (RenderError when
    its template cannot render)."""
    row = item.row
    if row.body is not None:
        return _Text(row.subject, row.body, item.language, row.language, row.encoding, row.segments)
    rendered = render_stored(
        templates,
        event_type=row.event_type,
        language=item.language,
        fallback_language=fallback_language,
        variables=item.variables,
    )
    size = sms_size(rendered.body) if row.channel == Channel.SMS else None
    return _Text(
        rendered.subject,
        rendered.body,
        rendered.language,
        rendered.language,
        size.encoding if size else None,
        size.segments if size else None,
    )


async def _render_and_claim(
    session: AsyncSession, ready: list[_Ready], settings: NotificationsSettings, now: datetime
) -> list[Claim]:
    """Render what is not rendered yet (giving up on a template that cannot render) and mark
    the rest ``sending`` in one statement. The templates are read once for the whole round."""
    fallback = settings.fallback_language
    templates = await stored_templates(
        session=session,
        keys=[
            (r.row.event_type, language)
            for r in ready
            if r.row.body is None
            for language in (r.language, fallback)
        ],
    )
    claims: list[Claim] = []
    columns: dict[str, list[Any]] = {name: [] for name in _CLAIM_COLUMNS}
    for item in ready:
        row = item.row
        try:
            text = _text_of(item, templates, fallback)
        except RenderError as exc:
            await give_up(session, row, f"template_error: {exc}", now)
            continue
        claim = Claim(row.id, uuid4(), row.attempts + 1, _message(item, text))
        claims.append(claim)
        values = (
            row.id,
            claim.attempt,
            claim.lease_token,
            mask(row.channel, item.address),
            text.stored_language,
            text.subject,
            text.body,
            text.encoding,
            text.segments,
        )
        for name, value in zip(_CLAIM_COLUMNS, values, strict=True):
            columns[name].append(value)
    if claims:
        lease_until = now + timedelta(seconds=settings.sending_lease_seconds)
        await run(session, queries.MARK_SENDING, columns | {"lease_until": lease_until, "now": now})
    return claims


def _message(item: _Ready, text: _Text) -> OutgoingMessage:
    row = item.row
    return OutgoingMessage(
        idempotency_key=row.id,
        channel=row.channel,
        address=item.address,
        subject=text.subject,
        body=text.body,
        language=text.language,
        event_id=row.event_id,
        event_type=row.event_type,
        household_id=row.household_id,
        site_id=row.site_id,
    )


# The parameters of queries.MARK_SENDING, one array each.
_CLAIM_COLUMNS = (
    "ids",
    "attempts",
    "lease_tokens",
    "recipients_masked",
    "languages",
    "subjects",
    "bodies",
    "encodings",
    "segments",
)

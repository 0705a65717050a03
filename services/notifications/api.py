"""HTTP routes of the notifications service: parse, authorise, call the domain."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.notifications.domain import notifications, recipients, templates
from services.notifications.domain.masking import mask_listed
from services.notifications.models import (
    NotificationPage,
    NotificationPublic,
    StaffRecipientCreate,
    StaffRecipientPage,
    StaffRecipientPublic,
    Status,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
)
from services.notifications.settings import Channel, StaffRole
from shared.auth import Principal, Role, require_roles
from shared.db import in_transaction
from shared.http import problem_responses
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["notifications"])

Reader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
# The event types a message is sent for, listed in the document; another is a 404
# (unknown-message-type, naming the known ones).
EventTypePath = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[A-Za-z]+$",
        json_schema_extra={"enum": sorted(templates.MESSAGES)},
    ),
]
LanguagePath = Annotated[str, Path(pattern=r"^[a-z]{2}$", description="ISO 639-1")]


def _public(row: Any) -> NotificationPublic:
    return NotificationPublic(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        household_id=row.household_id,
        site_id=row.site_id,
        recipient=row.recipient_masked,
        channel=row.channel,
        language=row.language,
        status=row.status,
        skip_reason=row.skip_reason,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at
        if row.status in (Status.QUEUED, Status.FAILED)
        else None,
        last_error=row.last_error,
        encoding=row.encoding,
        segments=row.segments,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


# --- notifications --------------------------------------------------------------------------


@router.get("/notifications", response_model=NotificationPage)
async def list_notifications(
    session: SessionDep,
    principal: Reader,
    household_id: UUID | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    channel: Channel | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> NotificationPage:
    """Notifications, newest first; recipients masked, bodies never shown."""
    async with session.begin():
        rows, next_cursor = await notifications.page(
            session=session,
            principal=principal,
            household_id=household_id,
            status=status_,
            channel=channel,
            cursor=cursor,
            limit=limit,
        )
    return NotificationPage(items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/notifications/{notification_id}",
    response_model=NotificationPublic,
    responses=problem_responses(404),
)
async def get_notification(
    notification_id: UUID, session: SessionDep, principal: Reader
) -> NotificationPublic:
    async with session.begin():
        row = await notifications.get(
            session=session, notification_id=notification_id, principal=principal
        )
    return _public(row)


@router.post(
    "/notifications/{notification_id}/retry",
    response_model=NotificationPublic,
    responses=problem_responses(404),
)
async def retry_notification(
    notification_id: UUID, session: SessionDep, principal: Admin, clock: ClockDep
) -> NotificationPublic:
    """Queue a dead, failed or skipped notification again (same id, same idempotency key)."""
    now = clock()
    row = await in_transaction(
        session,
        lambda: notifications.retry(
            session=session, principal=principal, notification_id=notification_id, now=now
        ),
    )
    return _public(row)


# --- templates ------------------------------------------------------------------------------


def _template(row: Any) -> TemplatePublic:
    kind = templates.kind_of(row.event_type)
    return TemplatePublic(
        event_type=row.event_type,
        language=row.language,
        audience=kind.audience,
        subject=row.subject,
        body=row.body,
        variables=sorted(kind.variables()),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


@router.get(
    "/templates",
    response_model=TemplatePage,
    summary="The stored templates, by event type and language, a page at a time",
)
async def list_templates(
    session: SessionDep,
    principal: Reader,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> TemplatePage:
    async with session.begin():
        rows, next_cursor = await templates.page(session=session, cursor=cursor, limit=limit)
    return TemplatePage(items=[_template(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/templates/{event_type}/{language}",
    response_model=TemplatePublic,
    responses=problem_responses(404),
)
async def get_template(
    event_type: EventTypePath, language: LanguagePath, session: SessionDep, principal: Reader
) -> TemplatePublic:
    return _template(await templates.get(session=session, event_type=event_type, language=language))


@router.put(
    "/templates/{event_type}/{language}",
    response_model=TemplatePublic,
    responses={
        201: {"description": "Created"},
        **problem_responses(404),
        422: {
            **problem_responses(422)[422],
            "description": "A field is invalid, or the template cannot be used "
            "(template-invalid): a syntax error, a variable the event lacks, a private "
            "attribute, or over the sandbox's render limits when tried on sample values.",
        },
    },
)
async def put_template(
    event_type: EventTypePath,
    language: LanguagePath,
    body: TemplateUpdate,
    session: SessionDep,
    principal: Admin,
    clock: ClockDep,
    response: Response,
) -> TemplatePublic:
    """Create or replace a template; 422 on a syntax error or a variable the event lacks."""
    now = clock()
    row, created = await in_transaction(
        session,
        lambda: templates.put(
            session=session,
            event_type=event_type,
            language=language,
            subject=body.subject,
            body=body.body,
            principal=principal,
            now=now,
        ),
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _template(row)


# --- staff directory ------------------------------------------------------------------------


def _staff_recipient(row: Any) -> StaffRecipientPublic:
    return StaffRecipientPublic(
        id=row.id,
        role=row.role,
        site_id=row.site_id,
        channel=row.channel,
        address=mask_listed(row.channel, row.address),
        language=row.language,
        provider_id=row.provider_id,
        staff_sub=row.staff_sub,
        created_at=row.created_at,
    )


@router.post(
    "/staff-recipients",
    response_model=StaffRecipientPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add a staff directory entry (managers: for their sites)",
    responses=problem_responses(404, 409),
)
async def add_staff_recipient(
    body: StaffRecipientCreate, session: SessionDep, principal: Reader, clock: ClockDep
) -> StaffRecipientPublic:
    """Add a directory entry (409 when the same role, site, channel and address exist).
    A manager adds entries of their own sites only (404 for another site or "*"), and no
    provider contacts (403)."""
    now = clock()
    row = await in_transaction(
        session,
        lambda: recipients.add_staff(session=session, entry=body, principal=principal, now=now),
    )
    return _staff_recipient(row)


@router.get(
    "/staff-recipients",
    response_model=StaffRecipientPage,
    summary="The staff directory of the caller's sites, a page at a time",
)
async def list_staff_recipients(
    session: SessionDep,
    principal: Reader,
    role: StaffRole | None = None,
    site_id: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> StaffRecipientPage:
    """Oldest first; addresses masked; managers see the entries of their sites only."""
    async with session.begin():
        rows, next_cursor = await recipients.list_staff(
            session=session,
            principal=principal,
            role=role,
            site_id=site_id,
            cursor=cursor,
            limit=limit,
        )
    return StaffRecipientPage(items=[_staff_recipient(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/staff-recipients/{recipient_id}",
    response_model=StaffRecipientPublic,
    summary="One staff directory entry",
    responses=problem_responses(404),
)
async def get_staff_recipient(
    recipient_id: UUID, session: SessionDep, principal: Reader
) -> StaffRecipientPublic:
    """The address masked; another site's entry is not found."""
    async with session.begin():
        row = await recipients.get_staff(
            session=session, principal=principal, recipient_id=recipient_id
        )
    return _staff_recipient(row)


@router.delete(
    "/staff-recipients/{recipient_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a staff directory entry (managers: of their sites)",
    responses=problem_responses(404),
)
async def remove_staff_recipient(
    recipient_id: UUID, session: SessionDep, principal: Reader
) -> Response:
    await in_transaction(
        session,
        lambda: recipients.remove_staff(
            session=session, principal=principal, recipient_id=recipient_id
        ),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Routes of the provider directory, and its HSDS import and export."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, status

from services.referral.api.common import (
    CONFLICT,
    NOT_FOUND,
    Admin,
    Cursor,
    DirectoryExporter,
    DirectoryReader,
    Limit,
)
from services.referral.domain import hsds, providers
from services.referral.domain.common import (
    DEFAULT_PAGE,
    Actor,
)
from services.referral.domain.vocabulary import ServiceType
from services.referral.models import (
    HsdsImportResult,
    PCode,
    ProviderCreate,
    ProviderPage,
    ProviderPublic,
    ProviderUpdate,
)
from services.referral.settings import SettingsDep
from shared.db import in_transaction
from shared.http import problem_responses
from shared.pagination import (
    InvalidCursor,
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
)
from shared.service import ClockDep, SessionDep

router = APIRouter(prefix="/v1", tags=["referral"])


# --- provider directory --------------------------------------------------------------------


@router.post(
    "/providers",
    status_code=status.HTTP_201_CREATED,
    response_model=ProviderPublic,
    responses=problem_responses(409),
)
async def create_provider(
    data: ProviderCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> ProviderPublic:
    """Add an organisation to the directory (409 if its name or id is already there)."""

    async def work() -> ProviderPublic:
        provider = await providers.create(
            session=session, data=data, actor=Actor(principal), now=clock()
        )
        return providers.to_public(provider, 0)

    return await in_transaction(session, work)


@router.get("/providers", response_model=ProviderPage)
async def list_providers(
    principal: DirectoryReader,
    session: SessionDep,
    service_type: ServiceType | None = None,
    region: PCode | None = None,
    active: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ProviderPage:
    async with session.begin():
        rows = await providers.page(
            session,
            after=decode_id_cursor(cursor) if cursor else None,
            limit=limit,
            service_type=service_type,
            region=region,
            active=active,
        )
        items = await providers.public_views(session, rows)
    return ProviderPage(
        items=items, next_cursor=encode_id_cursor(rows[-1].id) if len(rows) == limit else None
    )


def _hsds_cursor(cursor: str) -> tuple[UUID, int]:
    """The last provider of the previous page, and the number of the page asked for."""
    raw_after, page_number = decode_cursor(cursor, types=(str, int))
    try:
        after = UUID(raw_after)
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this service returned.") from exc
    if page_number < 2:
        raise InvalidCursor("The cursor is not one this service returned.")
    return after, page_number


@router.get("/providers/hsds", responses=problem_responses(403))
async def export_providers_hsds(
    principal: DirectoryExporter,
    session: SessionDep,
    clock: ClockDep,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    """The directory as pages of Open Referral HSDS 3 organisations, in provider id order;
    ``next_cursor`` (null on the last page) asks for the next one."""
    after, page_number = _hsds_cursor(cursor) if cursor else (None, 1)
    async with session.begin():
        organizations, total, last = await hsds.export_page(
            session, now=clock(), after=after, limit=limit
        )
    return hsds.document(
        organizations,
        total_items=total,
        page_number=page_number,
        per_page=limit,
        next_cursor=encode_cursor([str(last), page_number + 1]) if last else None,
    )


@router.post(
    "/providers/hsds",
    response_model=HsdsImportResult,
    responses=CONFLICT,
    # The body is read as a plain object (the organisation count is checked before the rest,
    # errors name organisations), so its schema is stated here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": hsds.document_schema()}},
        }
    },
)
async def import_providers_hsds(
    principal: Admin,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    document: Annotated[dict[str, Any], Body(description="HSDS organisation page.")],
) -> HsdsImportResult:
    """Create or update providers from HSDS organisations, all or nothing."""

    async def work() -> HsdsImportResult:
        return await hsds.import_document(
            session=session,
            raw=document,
            actor=Actor(principal),
            now=clock(),
            max_organizations=settings.import_max_organizations,
        )

    return await in_transaction(session, work)


@router.get("/providers/{provider_id:uuid}", response_model=ProviderPublic, responses=NOT_FOUND)
async def get_provider(
    provider_id: UUID, principal: DirectoryReader, session: SessionDep
) -> ProviderPublic:
    async with session.begin():
        provider = await providers.get(session, provider_id)
        return (await providers.public_views(session, [provider]))[0]


@router.patch("/providers/{provider_id:uuid}", response_model=ProviderPublic, responses=CONFLICT)
async def update_provider(
    provider_id: UUID,
    data: ProviderUpdate,
    principal: Admin,
    session: SessionDep,
    clock: ClockDep,
) -> ProviderPublic:
    async def work() -> ProviderPublic:
        provider = await providers.update(
            session=session,
            provider_id=provider_id,
            data=data,
            actor=Actor(principal),
            now=clock(),
        )
        return (await providers.public_views(session, [provider]))[0]

    return await in_transaction(session, work)

"""The provider directory: organisations, what they offer, where, in which languages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral import queries
from services.referral.domain.common import Actor, new_id, record_audit
from services.referral.domain.errors import ProviderExists, ProviderNotFound
from services.referral.domain.routing import Candidate
from services.referral.domain.states import AT_PROVIDER_STATUSES
from services.referral.models import (
    Provider,
    ProviderContact,
    ProviderCreate,
    ProviderPublic,
    ProviderUpdate,
    Referral,
)

_SLOT_STATUSES = sorted(str(s) for s in AT_PROVIDER_STATUSES)
# Built once: calls only bind values.
_OPEN_REFERRAL_COUNTS = (
    select(col(Referral.provider_id), sa.func.count())
    .where(
        col(Referral.provider_id)
        == sa.func.any(sa.bindparam("provider_ids", type_=postgresql.ARRAY(sa.Uuid)))
    )
    .where(col(Referral.status).in_(_SLOT_STATUSES))
    .group_by(col(Referral.provider_id))
)
_PROVIDER_COLUMNS = tuple(Provider.__table__.c)  # type: ignore[attr-defined]
_OPEN_REFERRALS = sa.column("open_referrals", sa.BigInteger)
# The hand-written statement (queries.py), its rows read as Provider entities.
_ROUTING_CANDIDATES = select(Provider, _OPEN_REFERRALS).from_statement(
    queries.ROUTING_CANDIDATES.statement.columns(*_PROVIDER_COLUMNS, _OPEN_REFERRALS)
)


async def open_referral_counts(
    session: AsyncSession, provider_ids: Iterable[UUID]
) -> dict[UUID, int]:
    """Referrals holding a slot at each provider (sent, accepted, in progress)."""
    ids = list(provider_ids)
    if not ids:
        return {}
    rows = await session.exec(_OPEN_REFERRAL_COUNTS, params={"provider_ids": ids})
    counts = {provider_id: int(count) for provider_id, count in rows.all()}
    return {provider_id: counts.get(provider_id, 0) for provider_id in ids}


def to_public(provider: Provider, open_referrals: int) -> ProviderPublic:
    return ProviderPublic(
        id=provider.id,
        name=provider.name,
        services=provider.services,
        regions=provider.regions,
        languages=provider.languages,
        capacity=provider.capacity,
        contact=ProviderContact.model_validate(provider.contact),
        opening_hours=provider.opening_hours,
        active=provider.active,
        open_referrals=open_referrals,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


async def public_views(
    session: AsyncSession, providers: Sequence[Provider]
) -> list[ProviderPublic]:
    counts = await open_referral_counts(session, [p.id for p in providers])
    return [to_public(p, counts[p.id]) for p in providers]


async def get(session: AsyncSession, provider_id: UUID, *, lock: bool = False) -> Provider:
    query = select(Provider).where(Provider.id == provider_id)
    if lock:
        query = query.with_for_update()
    provider = (await session.exec(query)).first()
    if provider is None:
        raise ProviderNotFound(f"Provider {provider_id} is not in the directory.")
    return provider


async def _ensure_unique(
    session: AsyncSession, *, name: str, provider_id: UUID, exclude_self: bool
) -> None:
    query = select(Provider.id).where(sa.func.lower(Provider.name) == name.lower())
    if exclude_self:
        query = query.where(Provider.id != provider_id)
    existing = (await session.exec(query)).first()
    if existing is not None:
        raise ProviderExists(
            f"A provider named {name!r} is already in the directory.", provider_id=existing
        )
    if not exclude_self and await session.get(Provider, provider_id) is not None:
        raise ProviderExists(
            f"Provider {provider_id} is already in the directory.", provider_id=provider_id
        )


def _columns(data: ProviderCreate | ProviderUpdate, fields: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in fields:
        value = getattr(data, name)
        if name == "contact":
            value = value.model_dump(mode="json", exclude_none=True)
        elif name in ("services", "regions", "languages"):
            value = [str(v) for v in value]
        values[name] = value
    return values


_FIELDS = (
    "name",
    "services",
    "regions",
    "languages",
    "capacity",
    "contact",
    "opening_hours",
    "active",
)


async def create(
    *, session: AsyncSession, data: ProviderCreate, actor: Actor, now: datetime
) -> Provider:
    provider_id = data.id or new_id()
    await _ensure_unique(session, name=data.name, provider_id=provider_id, exclude_self=False)
    provider = Provider(id=provider_id, created_at=now, updated_at=now, **_columns(data, _FIELDS))
    session.add(provider)
    await session.flush()
    await record_audit(
        session, actor, action="provider.create", resource_type="provider", resource_id=provider.id
    )
    return provider


async def update(
    *,
    session: AsyncSession,
    provider_id: UUID,
    data: ProviderUpdate,
    actor: Actor,
    now: datetime,
) -> Provider:
    provider = await get(session, provider_id, lock=True)
    changes = _columns(data, [name for name in _FIELDS if name in data.model_fields_set])
    if "name" in changes:
        await _ensure_unique(
            session, name=changes["name"], provider_id=provider_id, exclude_self=True
        )
    for name, value in changes.items():
        setattr(provider, name, value)
    provider.updated_at = now
    session.add(provider)
    await session.flush()
    await record_audit(
        session, actor, action="provider.update", resource_type="provider", resource_id=provider.id
    )
    return provider


async def page(
    session: AsyncSession,
    *,
    after: UUID | None,
    limit: int,
    service_type: str | None = None,
    region: str | None = None,
    active: bool | None = None,
) -> list[Provider]:
    query = select(Provider).order_by(col(Provider.id)).limit(limit)
    if after is not None:
        query = query.where(col(Provider.id) > after)
    if service_type is not None:
        query = query.where(col(Provider.services).contains([service_type]))
    if region is not None:
        query = query.where(col(Provider.regions).contains([region]))
    if active is not None:
        query = query.where(Provider.active == active)
    return list((await session.exec(query)).all())


async def routing_candidates(
    session: AsyncSession, *, service_types: Sequence[str], regions: Sequence[str]
) -> list[tuple[Provider, Candidate]]:
    """Active providers offering any of ``service_types`` in any of ``regions``, locked (in id
    order, so concurrent routings cannot deadlock) until the transaction ends: two referrals
    routed at once cannot both take a provider's last slot. The slots are counted by a second
    statement of the database function, after the locks are held, so it sees what their
    holders committed."""
    if not regions:
        return []
    rows = await session.exec(  # type: ignore[call-overload]
        _ROUTING_CANDIDATES,
        params={
            "service_types": sorted({str(service_type) for service_type in service_types}),
            "regions": list(regions),
            "slot_statuses": _SLOT_STATUSES,
        },
    )
    return [
        (
            provider,
            Candidate(
                provider_id=provider.id,
                services=frozenset(provider.services),
                regions=frozenset(provider.regions),
                languages=frozenset(provider.languages),
                capacity=provider.capacity,
                open_referrals=int(open_referrals),
                active=provider.active,
            ),
        )
        for provider, open_referrals in rows.all()
    ]

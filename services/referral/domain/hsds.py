"""The provider directory in Open Referral HSDS 3.x JSON, both ways.

A document is one page of HSDS's ``organization`` list (``contents``). Each Haven provider
is one organisation with:

* one physical ``location`` (its address; its ``schedules[0].description`` holds the opening
  hours) and the organisation's ``phones``, ``email`` and ``website``;
* one ``service`` per Haven service type, tagged with an ``attributes`` taxonomy term
  (taxonomy ``haven-referral-service-type``, code = the service type), whose
  ``service_areas`` are the p-codes served (``extent_type: text``), whose ``languages`` are
  the languages spoken and whose ``capacities`` hold one ``service_capacity`` in the unit
  "open referral slot" (Haven's capacity is shared by the organisation's services: each
  service carries the same ``maximum``; ``available`` is what is free now).

On import, services are recognised by that taxonomy term or, failing it, by a name equal to
a service type; other services are skipped and reported. An organisation without any
recognised service or without a p-code service area is skipped and reported too. Ids of
sub-objects are derived from the provider id (UUIDv5), so exports are stable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import providers
from services.referral.domain.common import Actor
from services.referral.domain.errors import DuplicateOrganization, TooManyOrganizations
from services.referral.domain.vocabulary import ServiceType
from services.referral.models import (
    HsdsImportResult,
    Provider,
    ProviderCreate,
    ProviderPublic,
    ProviderUpdate,
)
from shared.problems import ValidationFailed

TAXONOMY = "haven-referral-service-type"
UNIT_IDENTIFIER = "referral_slot"
UNIT = {
    "id": str(uuid5(UUID(int=0), "haven:unit:referral_slot")),
    "name": "open referral slot",
    "scheme": "haven",
    "identifier": UNIT_IDENTIFIER,
}
NOT_STATED = "Not stated"
SERVICE_NAMES = {
    ServiceType.MEDICAL: "Medical care",
    ServiceType.LEGAL: "Legal aid",
    ServiceType.PSYCHOSOCIAL: "Psychosocial support",
    ServiceType.PROTECTION: "Protection",
    ServiceType.COUNTER_TRAFFICKING: "Counter-trafficking support",
    ServiceType.EMPLOYMENT: "Employment support",
    ServiceType.VOLUNTARY_RETURN: "Assisted voluntary return",
    ServiceType.SHELTER: "Shelter",
    ServiceType.GBV: "Gender-based violence response",
}
_PCODE = re.compile(r"^[A-Z]{2}[A-Z0-9]{0,18}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
MAX_ITEMS = 200


def _sub_id(provider_id: UUID, *parts: str) -> str:
    return str(uuid5(provider_id, ":".join(parts)))


# --- export --------------------------------------------------------------------------------


def organization(provider: ProviderPublic, *, now: datetime) -> dict[str, Any]:
    """One provider as an HSDS organisation with its location and services."""
    pid = provider.id
    contact = provider.contact
    location_id = _sub_id(pid, "location")
    location: dict[str, Any] = {
        "id": location_id,
        "organization_id": str(pid),
        "location_type": "physical",
        "name": provider.name,
        "schedules": [
            {
                "id": _sub_id(pid, "location", "schedule"),
                "location_id": location_id,
                "description": provider.opening_hours,
            }
        ],
    }
    if contact.address is not None:
        address = contact.address.model_dump(exclude_none=True)
        location["addresses"] = [
            {
                "id": _sub_id(pid, "location", "address"),
                "location_id": location_id,
                "address_type": "physical",
                **address,
            }
        ]
    org: dict[str, Any] = {
        "id": str(pid),
        "name": provider.name,
        "description": f"{provider.name}: referral provider in the Haven directory.",
        "locations": [location],
        "services": [
            _service(provider, service_type, location_id, now=now)
            for service_type in sorted(provider.services)
        ],
    }
    if contact.email:
        org["email"] = contact.email
    if contact.website:
        org["website"] = contact.website
    if contact.phone:
        org["phones"] = [
            {"id": _sub_id(pid, "phone"), "organization_id": str(pid), "number": contact.phone}
        ]
    return org


def _service(
    provider: ProviderPublic, service_type: ServiceType, location_id: str, *, now: datetime
) -> dict[str, Any]:
    pid = provider.id
    service_id = _sub_id(pid, "service", service_type)
    return {
        "id": service_id,
        "organization_id": str(pid),
        "name": SERVICE_NAMES[service_type],
        "status": "active" if provider.active else "inactive",
        "attributes": [
            {
                "id": _sub_id(pid, "service", service_type, "attribute"),
                "link_id": service_id,
                "link_type": "service",
                "link_entity": "service",
                "taxonomy_term": {
                    "id": str(uuid5(UUID(int=0), f"{TAXONOMY}:{service_type}")),
                    "code": str(service_type),
                    "name": SERVICE_NAMES[service_type],
                    "taxonomy": TAXONOMY,
                },
            }
        ],
        "service_areas": [
            {
                "id": _sub_id(pid, "service", service_type, "area", region),
                "service_id": service_id,
                "name": region,
                "extent": region,
                "extent_type": "text",
            }
            for region in provider.regions
        ],
        "languages": [
            {
                "id": _sub_id(pid, "service", service_type, "language", code),
                "service_id": service_id,
                "code": code,
            }
            for code in provider.languages
        ],
        "capacities": [
            {
                "id": _sub_id(pid, "service", service_type, "capacity"),
                "service_id": service_id,
                "unit": UNIT,
                "maximum": provider.capacity,
                "available": max(provider.capacity - provider.open_referrals, 0),
                "description": "Open referral slots, shared by all of the organisation's services.",
                "updated": provider.updated_at.isoformat(),
            }
        ],
        "service_at_locations": [
            {
                "id": _sub_id(pid, "service", service_type, "at", location_id),
                "service_id": service_id,
                "location_id": location_id,
            }
        ],
    }


def document(
    organizations: Sequence[dict[str, Any]],
    *,
    total_items: int,
    page_number: int = 1,
    per_page: int | None = None,
    next_cursor: str | None = None,
) -> dict[str, Any]:
    """One page of HSDS's organisation list (``next_cursor``, Haven's, resumes after it)."""
    count = len(organizations)
    per_page = per_page or max(count, 1)
    return {
        "total_items": total_items,
        "total_pages": max(1, -(-total_items // per_page)),
        "page_number": page_number,
        "size": count,
        "first_page": page_number == 1,
        "last_page": next_cursor is None,
        "empty": count == 0,
        "contents": list(organizations),
        "next_cursor": next_cursor,
    }


async def export_page(
    session: AsyncSession, *, now: datetime, after: UUID | None, limit: int
) -> tuple[list[dict[str, Any]], int, UUID | None]:
    """Up to ``limit`` organisations after provider ``after``, the directory's size, and the
    last provider's id when more follow."""
    query = select(Provider).order_by(col(Provider.id)).limit(limit + 1)
    if after is not None:
        query = query.where(col(Provider.id) > after)
    found = list((await session.exec(query)).all())
    rows, more = found[:limit], len(found) > limit
    total = (await session.exec(select(sa.func.count()).select_from(Provider))).one()
    views = await providers.public_views(session, rows)
    organizations = [organization(view, now=now) for view in views]
    return organizations, int(total), rows[-1].id if more else None


# --- import: the part of HSDS Haven reads --------------------------------------------------


class _Hsds(BaseModel):
    model_config = ConfigDict(extra="ignore")


class HsdsTaxonomyTerm(_Hsds):
    code: str | None = None
    taxonomy: str | None = None


class HsdsAttribute(_Hsds):
    taxonomy_term: HsdsTaxonomyTerm | None = None


class HsdsServiceArea(_Hsds):
    name: str | None = None
    extent: str | None = None
    extent_type: str | None = None


class HsdsLanguage(_Hsds):
    code: str | None = None


class HsdsUnit(_Hsds):
    name: str | None = None
    identifier: str | None = None


class HsdsCapacity(_Hsds):
    unit: HsdsUnit | None = None
    maximum: float | None = Field(None, ge=0, strict=True)
    available: float | None = Field(None, strict=True)


class HsdsSchedule(_Hsds):
    description: str | None = None


class HsdsService(_Hsds):
    id: str
    name: str
    status: str = "active"
    attributes: list[HsdsAttribute] = Field(default_factory=list, max_length=MAX_ITEMS)
    service_areas: list[HsdsServiceArea] = Field(default_factory=list, max_length=MAX_ITEMS)
    languages: list[HsdsLanguage] = Field(default_factory=list, max_length=MAX_ITEMS)
    capacities: list[HsdsCapacity] = Field(default_factory=list, max_length=MAX_ITEMS)
    schedules: list[HsdsSchedule] = Field(default_factory=list, max_length=MAX_ITEMS)


class HsdsAddress(_Hsds):
    address_1: str
    city: str
    state_province: str | None = None
    postal_code: str | None = None
    country: str
    address_type: str | None = None


class HsdsLocation(_Hsds):
    location_type: str | None = None
    addresses: list[HsdsAddress] = Field(default_factory=list, max_length=MAX_ITEMS)
    schedules: list[HsdsSchedule] = Field(default_factory=list, max_length=MAX_ITEMS)
    languages: list[HsdsLanguage] = Field(default_factory=list, max_length=MAX_ITEMS)


class HsdsPhone(_Hsds):
    number: str


class HsdsOrganization(_Hsds):
    id: UUID
    name: str
    email: str | None = None
    website: str | None = None
    phones: list[HsdsPhone] = Field(default_factory=list, max_length=MAX_ITEMS)
    services: list[HsdsService] = Field(default_factory=list, max_length=MAX_ITEMS)
    locations: list[HsdsLocation] = Field(default_factory=list, max_length=MAX_ITEMS)


class HsdsDocument(_Hsds):
    """A page of HSDS organisations (``contents``), as ``GET /organizations`` returns it."""

    contents: list[HsdsOrganization]


def _inline(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """``schema`` with its ``$ref``s to ``defs`` replaced by what they name (no cycles)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def document_schema() -> dict[str, Any]:
    """The JSON Schema of what ``parse`` reads: the part of HSDS Haven uses, other members
    allowed; self-contained, for the import's request body."""
    schema = HsdsDocument.model_json_schema()
    return dict(_inline(schema, schema.get("$defs", {})))


def service_type_of(service: HsdsService) -> ServiceType | None:
    for attribute in service.attributes:
        term = attribute.taxonomy_term
        if term and term.taxonomy == TAXONOMY and term.code in set(ServiceType):
            return ServiceType(term.code)
    if service.name in set(ServiceType):
        return ServiceType(service.name)
    return None


def to_provider(org: HsdsOrganization) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The provider fields an organisation maps to (None: nothing Haven can use), and what
    was skipped."""
    skipped: list[dict[str, str]] = []
    services: list[ServiceType] = []
    regions: list[str] = []
    languages: list[str] = []
    capacity = 0
    active = False
    schedules: list[HsdsSchedule] = []
    for service in org.services:
        service_type = service_type_of(service)
        if service_type is None:
            skipped.append(
                {
                    "organization_id": str(org.id),
                    "service_id": service.id,
                    "reason": "not a Haven service type",
                }
            )
            continue
        if service_type not in services:
            services.append(service_type)
        active = active or service.status == "active"
        for area in service.service_areas:
            code = area.name if area.name and _PCODE.match(area.name) else area.extent
            if code and _PCODE.match(code) and code not in regions:
                regions.append(code)
        for language in service.languages:
            if language.code and _LANGUAGE.match(language.code) and language.code not in languages:
                languages.append(language.code)
        for slot in service.capacities:
            if slot.maximum is not None and (
                slot.unit is None or slot.unit.identifier in (None, UNIT_IDENTIFIER)
            ):
                capacity = max(capacity, int(slot.maximum))
        schedules.extend(service.schedules)
    if not services:
        skipped.append({"organization_id": str(org.id), "reason": "no Haven service type"})
        return None, skipped
    if not regions:
        skipped.append({"organization_id": str(org.id), "reason": "no p-code service area"})
        return None, skipped

    location = org.locations[0] if org.locations else None
    address = None
    if location is not None:
        physical = [a for a in location.addresses if a.address_type in (None, "physical")]
        candidates = physical or location.addresses
        if candidates:
            address = candidates[0].model_dump(exclude={"address_type"}, exclude_none=True)
        schedules = location.schedules + schedules
    opening_hours = next((s.description for s in schedules if s.description), NOT_STATED)
    contact: dict[str, Any] = {"address": address}
    if org.phones:
        contact["phone"] = org.phones[0].number
    if org.email:
        contact["email"] = org.email
    if org.website:
        contact["website"] = org.website
    return (
        {
            "id": org.id,
            "name": org.name,
            "services": services,
            "regions": regions,
            "languages": languages,
            "capacity": capacity,
            "contact": contact,
            "opening_hours": opening_hours,
            "active": active,
        },
        skipped,
    )


def parse(
    raw: dict[str, Any], *, max_organizations: int
) -> tuple[list[ProviderCreate], list[dict[str, str]]]:
    """Validate a document and map it to providers; 422 naming the fields at fault."""
    contents = raw.get("contents")
    if isinstance(contents, list) and len(contents) > max_organizations:
        raise TooManyOrganizations(
            f"The document holds {len(contents)} organisations; import at most "
            f"{max_organizations} at a time.",
            limit=max_organizations,
        )
    try:
        doc = HsdsDocument.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, prefix="") from None
    seen: set[UUID] = set()
    result: list[ProviderCreate] = []
    skipped: list[dict[str, str]] = []
    for index, org in enumerate(doc.contents):
        if org.id in seen:
            raise DuplicateOrganization(
                f"Organisation {org.id} appears more than once.", organization_id=org.id
            )
        seen.add(org.id)
        fields, left_out = to_provider(org)
        skipped += left_out
        if fields is None:
            continue
        try:
            result.append(ProviderCreate.model_validate(fields))
        except ValidationError as exc:
            raise _invalid(exc, prefix=f"contents[{index}] (organisation {org.id})") from None
    return result, skipped


def _invalid(exc: ValidationError, *, prefix: str) -> ValidationFailed:
    errors = [
        {
            "field": ".".join(str(p) for p in error["loc"]) or "document",
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    where = f" in {prefix}" if prefix else ""
    return ValidationFailed(
        f"The HSDS document cannot be imported: {len(errors)} field(s) need correcting{where}.",
        errors=errors,
    )


async def import_document(
    *,
    session: AsyncSession,
    raw: dict[str, Any],
    actor: Actor,
    now: datetime,
    max_organizations: int,
) -> HsdsImportResult:
    """Create or update one provider per usable organisation, all in the caller's transaction."""
    parsed, skipped = parse(raw, max_organizations=max_organizations)
    created: list[UUID] = []
    updated: list[UUID] = []
    for data in parsed:
        assert data.id is not None
        if await session.get(Provider, data.id) is None:
            await providers.create(session=session, data=data, actor=actor, now=now)
            created.append(data.id)
        else:
            changes = ProviderUpdate.model_validate(data.model_dump(exclude={"id"}))
            await providers.update(
                session=session, provider_id=data.id, data=changes, actor=actor, now=now
            )
            updated.append(data.id)
    return HsdsImportResult(created=created, updated=updated, skipped=skipped)

"""What every registration route shares: roles, If-Match and ETags, paging, the dedup policy."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Query, Response

from services.registration.domain.dedup import DedupPolicy
from services.registration.domain.views import Actor, HouseholdView, household_public
from services.registration.models import HouseholdPublic
from services.registration.settings import RegistrationSettings
from shared.auth import Principal, Role, require_roles

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_SEARCH_LENGTH = 100
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_ETAG = re.compile(r'\s*(?:W/)?"(\d{1,9})"\s*')

Writer = Annotated[Principal, Depends(require_roles(Role.FIELD_STAFF, Role.ADMIN))]
Reader = Annotated[
    Principal,
    Depends(require_roles(Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.ADMIN)),
]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
# The review queue: readers see their sites' reviews, supervisors decide them (four eyes).
QueueReader = Annotated[
    Principal,
    Depends(
        require_roles(Role.FIELD_STAFF, Role.CASEWORKER, Role.MANAGER, Role.SUPERVISOR, Role.ADMIN)
    ),
]
Supervisor = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR))]
IfMatch = Annotated[
    str | None,
    Header(description='The ETag last read, e.g. W/"3". Required for changes.'),
]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(value: str | None) -> frozenset[int] | None:
    """The versions an If-Match header names; None when absent (or `*`: a version is needed)."""
    if value is None or value.strip() in ("", "*"):
        return None
    versions = set()
    for part in value.split(","):
        match = _ETAG.fullmatch(part)
        versions.add(int(match.group(1)) if match else -1)  # -1 never matches: 412
    return frozenset(versions)


def policy(settings: RegistrationSettings) -> DedupPolicy:
    return DedupPolicy(
        threshold=settings.duplicate_threshold,
        candidates_per_member=settings.dedup_candidates_per_member,
    )


def household_response(
    view: HouseholdView, actor: Actor, response: Response, status_code: int = 200
) -> HouseholdPublic:
    response.headers["ETag"] = etag(view.household.version)
    response.status_code = status_code
    return household_public(view, sees_sensitive=actor.sees_sensitive)

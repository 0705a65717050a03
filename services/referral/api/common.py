"""What the referral routes share: who may call them, page parameters, declared problems."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from services.referral.domain.common import MAX_PAGE
from shared.auth import Principal, Role, require_roles
from shared.http import problem_responses

Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
DirectoryReader = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.CASEWORKER, Role.MANAGER))
]
DirectoryExporter = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
# Protection focal points handle sensitive referrals (counter-trafficking, GBV), which
# managers see only as counts: they refer, read, cancel, revoke and assign like managers.
Referrer = Annotated[
    Principal,
    Depends(require_roles(Role.CASEWORKER, Role.MANAGER, Role.PROTECTION_FOCAL_POINT)),
]
ReferralReader = Annotated[
    Principal,
    Depends(
        require_roles(Role.CASEWORKER, Role.MANAGER, Role.PROTECTION_FOCAL_POINT, Role.PROVIDER)
    ),
]
ProviderStaff = Annotated[Principal, Depends(require_roles(Role.PROVIDER))]
# Revoke, and assign from the managers' queue.
QueueKeeper = Annotated[
    Principal, Depends(require_roles(Role.MANAGER, Role.PROTECTION_FOCAL_POINT))
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]

NOT_FOUND = problem_responses(404)
CONFLICT = problem_responses(404, 409)

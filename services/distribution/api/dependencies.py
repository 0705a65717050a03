"""What the routes depend on: the request's moment, the policy book, roles, paging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from services.distribution.domain.policy import PolicyBook
from services.distribution.models import SKU_PATTERN
from services.distribution.settings import SettingsDep
from shared.auth import Principal, Role, require_roles
from shared.clock import local_date
from shared.pagination import MAX_LIMIT
from shared.service import ClockDep


async def get_policies(request: Request) -> PolicyBook:
    """The entitlement policy loaded at start-up (see the router's lifespan)."""
    policies: PolicyBook = request.app.state.policies
    return policies


@dataclass(frozen=True)
class Moment:
    """The time of the request and the programme's date (the runtime's clock)."""

    now: datetime
    today: date


async def get_moment(clock: ClockDep, settings: SettingsDep) -> Moment:
    now = clock()
    return Moment(now=now, today=local_date(now, settings.timezone))


PoliciesDep = Annotated[PolicyBook, Depends(get_policies)]
MomentDep = Annotated[Moment, Depends(get_moment)]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Operator = Annotated[Principal, Depends(require_roles(Role.WAREHOUSE_OPERATOR))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
AdminOrManager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
OperatorOrManager = Annotated[
    Principal, Depends(require_roles(Role.WAREHOUSE_OPERATOR, Role.MANAGER))
]
Staff = Annotated[
    Principal, Depends(require_roles(Role.WAREHOUSE_OPERATOR, Role.MANAGER, Role.ADMIN))
]
Prescriber = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER, Role.PROVIDER))]
"""Who records a prescription reference: clinic staff (provider), managers, admins."""
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN)]

"""Creating referrals: by hand (a caseworker), automatically (one, or a batch together)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral import queries
from services.referral.domain import consent, providers
from services.referral.domain.common import Actor, emit, new_id, record_audit
from services.referral.domain.errors import (
    ConsentRequired,
    DuplicateReferral,
    HouseholdInactive,
    HouseholdNotFound,
    HouseholdOutOfScope,
)
from services.referral.domain.referrals.access import may_see
from services.referral.domain.referrals.changes import (
    created_params,
    event_fields,
    history_step,
    lock_household,
    open_referral,
)
from services.referral.domain.referrals.sending import (
    move,
    regions_of,
    route,
    routed_event,
)
from services.referral.domain.states import (
    Action,
    Status,
)
from services.referral.domain.vocabulary import (
    ConsentTaskStatus,
    Origin,
    ServiceType,
    Urgency,
)
from services.referral.models import (
    HouseholdView,
    Referral,
    ReferralCreate,
)
from services.referral.settings import ReferralSettings
from shared.auth import Principal
from shared.db import run_many
from shared.events.referral import (
    ReferralCreated,
    ReferralEscalated,
    ReferralSent,
)
from shared.vocabulary import HouseholdStatus


def _new_referral(
    household: HouseholdView,
    service_type: ServiceType,
    urgency: Urgency,
    origin: Origin,
    now: datetime,
    *,
    reason: str | None = None,
    consent_override: bool = False,
    override_reason: str | None = None,
    caseworker_sub: str | None = None,
) -> tuple[Referral, ReferralCreated]:
    """A referral not written or routed yet, and the event announcing its creation."""
    referral = Referral(
        id=new_id(),
        household_id=household.household_id,
        site_id=household.site_id,
        service_type=service_type,
        urgency=urgency,
        sensitive=service_type.sensitive,
        status=Status.CREATED,
        origin=origin,
        reason=reason,
        consent_override=consent_override,
        override_reason=override_reason,
        caseworker_sub=caseworker_sub,
        tried_provider_ids=[],
        created_at=now,
        updated_at=now,
    )
    creation = ReferralCreated(
        **event_fields(referral), origin=origin.value, consent_override=consent_override
    )
    return referral, creation


async def create(
    *,
    session: AsyncSession,
    household: HouseholdView,
    service_type: ServiceType,
    urgency: Urgency,
    origin: Origin,
    actor: Actor,
    now: datetime,
    settings: ReferralSettings,
    reason: str | None = None,
    consent_override: bool = False,
    override_reason: str | None = None,
    caseworker_sub: str | None = None,
) -> Referral:
    """Create and route a referral; the caller checked consent and that none is open."""
    referral, creation = _new_referral(
        household,
        service_type,
        urgency,
        origin,
        now,
        reason=reason,
        consent_override=consent_override,
        override_reason=override_reason,
        caseworker_sub=caseworker_sub,
    )
    # Written once, as routed: its row, creation step and routing step in one statement.
    await route(
        session, referral, household, actor=actor, now=now, settings=settings, creation=creation
    )
    await consent.close_tasks(
        session=session,
        household_id=household.household_id,
        status=ConsentTaskStatus.RESOLVED,
        reason="consent_override" if consent_override else "referred",
        actor=actor,
        now=now,
        service_types=[service_type],
    )
    return referral


@dataclass(frozen=True)
class NewAutomatic:
    """An automatic referral to make for a household that has none open of its service type
    and no consent task: what :func:`create` would be given."""

    household: HouseholdView
    service_type: ServiceType
    urgency: Urgency
    actor: Actor
    now: datetime


@dataclass(frozen=True)
class Created:
    """A new referral, written; its events and audit record are staged by :func:`announce`."""

    referral: Referral
    actor: Actor
    creation: ReferralCreated
    routed: ReferralSent | ReferralEscalated


async def create_automatic_together(
    *, session: AsyncSession, wanted: Sequence[NewAutomatic], settings: ReferralSettings
) -> list[Created]:
    """Create and route these referrals in order, as :func:`create` one after another would:
    the candidates of them all locked (in id order) and their slots counted in one
    statement, each choice counting the slots the ones before it took, and every row and
    history step written in one more. The locks are held until the transaction ends, as
    each :func:`create` would hold its own."""
    regions = sorted({region for new in wanted for region in regions_of(new.household)})
    found = await providers.routing_candidates(
        session, service_types=[new.service_type for new in wanted], regions=regions
    )
    created: list[Created] = []
    params: list[dict[str, Any]] = []
    for new in wanted:
        referral, creation = _new_referral(
            new.household, new.service_type, new.urgency, Origin.AUTOMATIC, new.now
        )
        provider = move(referral, new.household, found, now=new.now, settings=settings)
        if provider is not None:
            found = [  # the slot it took, for the next ones
                (p, replace(c, open_referrals=c.open_referrals + 1) if p is provider else c)
                for p, c in found
            ]
        step = history_step(
            referral,
            action=Action.SEND if provider else Action.QUEUE,
            from_status=Status.CREATED,
            to_status=referral.status,
            actor=new.actor,
            now=new.now,
            provider_id=provider.id if provider else None,
            reason_code=None if provider else "no_provider",
        )
        params.append(created_params(referral, step, actor=new.actor))
        created.append(Created(referral, new.actor, creation, routed_event(referral, provider)))
    if params:
        await run_many(session, queries.INSERT_CREATED, params)
    return created


async def announce(session: AsyncSession, created: Created) -> None:
    """Stage a referral's creation and routing events and its audit record, as
    :func:`create` and its caller would."""
    household_id = created.referral.household_id
    await emit(session, created.creation, household_id=household_id, actor=created.actor)
    await emit(session, created.routed, household_id=household_id, actor=created.actor)
    await record_audit(
        session,
        created.actor,
        action="referral.create",
        resource_type="referral",
        resource_id=created.referral.id,
        reason="automatic",
    )


async def create_manual(
    *,
    session: AsyncSession,
    principal: Principal,
    data: ReferralCreate,
    now: datetime,
    settings: ReferralSettings,
) -> Referral:
    """A caseworker's referral: the household must be known, active and in the caller's sites;
    without referral-sharing consent only an override with a reason lets it through."""
    actor = Actor(principal)
    household = await lock_household(session, data.household_id)
    unknown = (
        f"Household {data.household_id} is not known to the referral service. If it was "
        "registered moments ago, registration's events may still be on their way: try "
        "again shortly."
    )
    if household is None:
        raise HouseholdNotFound(unknown)
    if not principal.can_access_site(household.site_id):
        raise HouseholdOutOfScope(unknown)
    if household.status == HouseholdStatus.DEACTIVATED:
        raise HouseholdInactive(f"Household {data.household_id} is deactivated.")
    overriding = data.consent_override and not household.referral_sharing
    if not household.referral_sharing and not data.consent_override:
        raise ConsentRequired(
            f"Household {data.household_id} has not consented to sharing its data with "
            "providers. Ask for consent, or set consent_override: true with an override_reason."
        )
    existing = await open_referral(
        session, household_id=household.household_id, service_type=data.service_type
    )
    if existing is not None:
        detail = f"Household {data.household_id} already has an open {data.service_type} referral."
        if not may_see(principal, existing):  # a sensitive referral is not to be found this way
            raise DuplicateReferral(detail)
        raise DuplicateReferral(detail, referral_id=existing.id)
    referral = await create(
        session=session,
        household=household,
        service_type=data.service_type,
        urgency=data.urgency,
        origin=Origin.MANUAL,
        actor=actor,
        now=now,
        settings=settings,
        reason=data.reason,
        consent_override=overriding,
        override_reason=data.override_reason if overriding else None,
        caseworker_sub=principal.sub,
    )
    await record_audit(
        session,
        actor,
        action="referral.create_with_consent_override" if overriding else "referral.create",
        resource_type="referral",
        resource_id=referral.id,
        # The justification is free text: it stays on the referral (erased with the
        # household), the permanent audit trail says only that consent was overridden.
        reason="consent_override" if overriding else None,
    )
    return referral

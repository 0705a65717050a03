"""Referrals: creating them, routing them, moving them through the state machine, reading them.

Every function that changes a referral changes its row first, then appends its history and
stages its events and audit record — all in the caller's one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral import queries
from services.referral.domain import consent, providers, routing
from services.referral.domain.common import Actor, emit, new_id, record_audit
from services.referral.domain.errors import (
    ConsentRequired,
    DuplicateReferral,
    HouseholdInactive,
    HouseholdNotFound,
    HouseholdOutOfScope,
    ProviderUnsuitable,
    ReferralNotFound,
    ReferralOutOfScope,
)
from services.referral.domain.metrics import count_acceptance
from services.referral.domain.states import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Action,
    Status,
    allowed_actions,
    next_status,
)
from services.referral.domain.vocabulary import (
    CancelReason,
    ConsentTaskStatus,
    DeclineReason,
    Origin,
    RevokeReason,
    ServiceType,
    Urgency,
)
from services.referral.models import (
    HistoryEntryPublic,
    HouseholdBrief,
    HouseholdView,
    Provider,
    ProviderAddress,
    ProviderHistoryEntry,
    ProviderReferralView,
    Referral,
    ReferralCreate,
    ReferralHistory,
    ReferralPublic,
    ReferralSummary,
)
from services.referral.settings import ReferralSettings
from shared.auth import Principal, Role
from shared.db import run, run_many
from shared.events.referral import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralCreated,
    ReferralDeclined,
    ReferralEscalated,
    ReferralRerouted,
    ReferralRevoked,
    ReferralSent,
    ReferralStarted,
)
from shared.vocabulary import HouseholdStatus

PROVIDER_ACTIONS = frozenset({Action.ACCEPT, Action.DECLINE, Action.START, Action.COMPLETE})
STAFF_ACTIONS = frozenset({Action.CANCEL, Action.REVOKE, Action.ASSIGN})
MANAGERS_TIER = 3


# --- the household read model, as referrals need it ----------------------------------------


async def lock_household(session: AsyncSession, household_id: UUID) -> HouseholdView | None:
    return (
        await session.exec(
            select(HouseholdView)
            .where(HouseholdView.household_id == household_id)
            .with_for_update()
        )
    ).first()


async def open_referral(
    session: AsyncSession, *, household_id: UUID, service_type: str
) -> Referral | None:
    return (
        await session.exec(
            select(Referral)
            .where(Referral.household_id == household_id)
            .where(Referral.service_type == service_type)
            .where(col(Referral.status).in_([str(s) for s in OPEN_STATUSES]))
            .with_for_update()
        )
    ).first()


# --- the building blocks of every change ---------------------------------------------------


def event_fields(referral: Referral) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "household_id": referral.household_id,
        "service_type": referral.service_type,
        "urgency": referral.urgency,
        "status": referral.status,
        "provider_id": referral.provider_id,
        "due_at": referral.due_at,
        "site_id": referral.site_id,
        "sensitive": referral.sensitive,
    }


def apply_action(referral: Referral, action: Action, now: datetime) -> Status:
    """Move the referral along the state machine (409 if the table forbids it); return the
    status it had."""
    previous = Status(referral.status)
    target = next_status(previous, action)
    referral.status = target
    referral.updated_at = now
    if target in TERMINAL_STATUSES:
        referral.closed_at = now
    if target != Status.SENT:
        referral.next_escalation_at = None
    return previous


def _history_step(
    referral: Referral,
    *,
    action: str,
    from_status: Status | None,
    to_status: str,
    actor: Actor,
    now: datetime,
    provider_id: UUID | None = None,
    reason_code: str | None = None,
    note: str | None = None,
    tier: int | None = None,
) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "at": now,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor.sub,
        "provider_id": provider_id,
        "reason_code": reason_code,
        "note": note,
        "tier": tier,
    }


async def save(
    session: AsyncSession,
    referral: Referral,
    *,
    action: str,
    from_status: Status | None,
    actor: Actor,
    now: datetime,
    provider_id: UUID | None = None,
    reason_code: str | None = None,
    note: str | None = None,
    tier: int | None = None,
    new: bool = False,
) -> None:
    """Write the referral's row and one step of its history (before any of its events); a
    ``new`` referral in one statement with its creation step (see :func:`_write_created`)."""
    step = _history_step(
        referral,
        action=action,
        from_status=from_status,
        to_status=referral.status,
        actor=actor,
        now=now,
        provider_id=provider_id,
        reason_code=reason_code,
        note=note,
        tier=tier,
    )
    if new:
        await _write_created(session, referral, step, actor=actor)
        return
    session.add(referral)
    session.add(ReferralHistory(**step))
    await session.flush()


_REFERRAL_COLUMNS = tuple(Referral.__table__.c.keys())  # type: ignore[attr-defined]


def _created_params(referral: Referral, routed: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
    """What :data:`queries.INSERT_CREATED` binds for a new referral and its ``routed`` step."""
    created = _history_step(
        referral,
        action="create",
        from_status=None,
        to_status=Status.CREATED,
        actor=actor,
        now=referral.created_at,
    )
    params = {name: getattr(referral, name) for name in _REFERRAL_COLUMNS}
    params.update({f"{name}_created": value for name, value in created.items()})
    params.update({f"{name}_routed": value for name, value in routed.items()})
    return params


async def _write_created(
    session: AsyncSession, referral: Referral, routed: dict[str, Any], *, actor: Actor
) -> None:
    """Insert a new referral as routed, with its creation step and ``routed`` step."""
    await run(session, queries.INSERT_CREATED, _created_params(referral, routed, actor=actor))
    # Held by the session as if loaded: a later change in this transaction updates the row.
    make_transient_to_detached(referral)
    session.add(referral)


def _assign(
    referral: Referral, provider: Provider, now: datetime, settings: ReferralSettings
) -> None:
    """Give the referral to ``provider`` with a fresh deadline and escalation state."""
    referral.provider_id = provider.id
    if provider.id not in referral.tried_provider_ids:
        referral.tried_provider_ids = [*referral.tried_provider_ids, provider.id]
    policy = settings.policy_for(referral.service_type)
    referral.sent_at = now
    referral.due_at = now + policy.deadline(Urgency(referral.urgency))
    referral.overdue_at = None
    referral.escalation_tier = 0
    referral.next_escalation_at = referral.due_at


def _sent_event(referral: Referral, provider: Provider) -> ReferralSent:
    contact = provider.contact or {}
    address = contact.get("address")
    return ReferralSent(
        **event_fields(referral),
        provider_name=provider.name,
        provider_address=ProviderAddress.model_validate(address).one_line() if address else None,
        provider_opening_hours=provider.opening_hours,
        provider_phone=contact.get("phone"),
    )


async def _route(
    session: AsyncSession,
    referral: Referral,
    household: HouseholdView | None,
    *,
    actor: Actor,
    now: datetime,
    settings: ReferralSettings,
    reroute_reason: str | None = None,
    creation: ReferralCreated | None = None,
) -> Provider | None:
    """Send the referral to the best provider not tried yet; if none is left, queue it for
    the managers. Works from created (first routing), declined and sent (deadline).

    With ``creation`` the referral is new and not written yet: its row is inserted once as
    routed, with its creation step before the routing's, and ``creation`` is staged before
    the routing's events."""
    previous_provider = referral.provider_id
    found = await providers.routing_candidates(
        session, service_types=[referral.service_type], regions=_regions(household)
    )
    from_status = Status(referral.status)
    first = from_status == Status.CREATED
    provider = _move(referral, household, found, now=now, settings=settings)
    if provider is not None:
        action, reason_code = (Action.SEND if first else Action.REROUTE), reroute_reason
    else:
        action, reason_code = Action.QUEUE, reroute_reason or "no_provider"
    await save(
        session,
        referral,
        new=creation is not None,
        action=action,
        from_status=from_status,
        actor=actor,
        now=now,
        provider_id=provider.id if provider else None,
        reason_code=reason_code,
    )
    await _emit_creation(session, creation, actor)
    if not first:
        await emit(
            session,
            ReferralRerouted(
                **event_fields(referral),
                previous_provider_id=previous_provider,
                reason_code=reroute_reason,
            ),
            household_id=referral.household_id,
            actor=actor,
        )
    await emit(
        session,
        _routed_event(referral, provider),
        household_id=referral.household_id,
        actor=actor,
    )
    return provider


def _regions(household: HouseholdView | None) -> list[str]:
    """Where routing looks for providers: the household's admin2, then its admin1."""
    return [r for r in (household.admin2, household.admin1) if r] if household else []


def _move(
    referral: Referral,
    household: HouseholdView | None,
    found: Sequence[tuple[Provider, routing.Candidate]],
    *,
    now: datetime,
    settings: ReferralSettings,
) -> Provider | None:
    """Give the referral to the best of ``found`` not tried yet, or (None) to the managers'
    queue."""
    request = routing.RoutingRequest(
        service_type=referral.service_type,
        admin1=household.admin1 if household else None,
        admin2=household.admin2 if household else None,
        language=household.preferred_language if household else None,
        tried=frozenset(referral.tried_provider_ids),
    )
    chosen = routing.choose(request, [candidate for _, candidate in found])
    if chosen is not None:
        provider = next(p for p, _ in found if p.id == chosen.provider_id)
        first = referral.status == Status.CREATED
        apply_action(referral, Action.SEND if first else Action.REROUTE, now)
        _assign(referral, provider, now, settings)
        return provider
    apply_action(referral, Action.QUEUE, now)
    referral.provider_id = None
    referral.due_at = None
    referral.overdue_at = None
    referral.escalation_tier = 0
    return None


def _routed_event(
    referral: Referral, provider: Provider | None
) -> ReferralSent | ReferralEscalated:
    """What routing announces: sent to ``provider``, or queued for the managers."""
    return _sent_event(referral, provider) if provider else _queued_event(referral)


def _queued_event(referral: Referral) -> ReferralEscalated:
    return ReferralEscalated(
        **event_fields(referral),
        tier=MANAGERS_TIER,
        audience="manager",
        reason_code="no_provider",
        caseworker_sub=referral.caseworker_sub,
    )


async def _emit_creation(
    session: AsyncSession, creation: ReferralCreated | None, actor: Actor
) -> None:
    if creation is not None:
        await emit(session, creation, household_id=creation.household_id, actor=actor)


async def reroute(
    session: AsyncSession,
    referral: Referral,
    *,
    actor: Actor,
    now: datetime,
    settings: ReferralSettings,
    reason: str,
) -> Provider | None:
    """To the next provider not tried yet, or the managers' queue (used at a deadline)."""
    household = await session.get(HouseholdView, referral.household_id)
    return await _route(
        session, referral, household, actor=actor, now=now, settings=settings, reroute_reason=reason
    )


# --- creating ------------------------------------------------------------------------------


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
    await _route(
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
    regions = sorted({region for new in wanted for region in _regions(new.household)})
    found = await providers.routing_candidates(
        session, service_types=[new.service_type for new in wanted], regions=regions
    )
    created: list[Created] = []
    params: list[dict[str, Any]] = []
    for new in wanted:
        referral, creation = _new_referral(
            new.household, new.service_type, new.urgency, Origin.AUTOMATIC, new.now
        )
        provider = _move(referral, new.household, found, now=new.now, settings=settings)
        if provider is not None:
            found = [  # the slot it took, for the next ones
                (p, replace(c, open_referrals=c.open_referrals + 1) if p is provider else c)
                for p, c in found
            ]
        step = _history_step(
            referral,
            action=Action.SEND if provider else Action.QUEUE,
            from_status=Status.CREATED,
            to_status=referral.status,
            actor=new.actor,
            now=new.now,
            provider_id=provider.id if provider else None,
            reason_code=None if provider else "no_provider",
        )
        params.append(_created_params(referral, step, actor=new.actor))
        created.append(Created(referral, new.actor, creation, _routed_event(referral, provider)))
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
        raise DuplicateReferral(
            f"Household {data.household_id} already has an open {data.service_type} referral.",
            referral_id=existing.id,
        )
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
        reason=data.override_reason if overriding else None,
    )
    return referral


# --- who may see which referral ------------------------------------------------------------


def sees_as_provider(principal: Principal) -> bool:
    """Provider staff see their organisation's referrals only, through the restricted view."""
    return Role.PROVIDER in principal.roles and not principal.has_any(
        Role.CASEWORKER, Role.MANAGER, Role.ADMIN
    )


def provider_org(principal: Principal) -> UUID | None:
    try:
        return UUID(principal.org) if principal.org else None
    except ValueError:
        return None


async def _get(session: AsyncSession, referral_id: UUID, *, lock: bool) -> Referral | None:
    query = select(Referral).where(Referral.id == referral_id)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def load_for_provider(
    session: AsyncSession, referral_id: UUID, principal: Principal, *, lock: bool = False
) -> Referral:
    """The referral if it was sent to the caller's organisation; 404 otherwise."""
    referral = await _get(session, referral_id, lock=lock)
    detail = f"Referral {referral_id} is not among your organisation's referrals."
    if referral is None:
        raise ReferralNotFound(detail)
    org = provider_org(principal)
    if org is None or referral.provider_id != org:
        raise ReferralOutOfScope(detail)
    return referral


async def load_for_staff(
    session: AsyncSession, referral_id: UUID, principal: Principal, *, lock: bool = False
) -> Referral:
    """The referral if it belongs to one of the caller's sites; 404 otherwise."""
    referral = await _get(session, referral_id, lock=lock)
    detail = f"Referral {referral_id} was not found."
    if referral is None:
        raise ReferralNotFound(detail)
    if not principal.can_access_site(referral.site_id):
        raise ReferralOutOfScope(detail)
    return referral


async def read(session: AsyncSession, referral_id: UUID, principal: Principal) -> Referral:
    """One referral the caller may see (providers: their organisation's), audited as read."""
    if sees_as_provider(principal):
        referral = await load_for_provider(session, referral_id, principal)
    else:
        referral = await load_for_staff(session, referral_id, principal)
    await record_audit(
        session,
        Actor(principal),
        action="referral.read",
        resource_type="referral",
        resource_id=referral.id,
    )
    return referral


# --- what people do to a referral ----------------------------------------------------------


async def _simple(
    session: AsyncSession,
    referral: Referral,
    action: Action,
    event: type[ReferralAccepted | ReferralStarted | ReferralCompleted],
    *,
    actor: Actor,
    now: datetime,
) -> Referral:
    previous = apply_action(referral, action, now)
    await save(
        session,
        referral,
        action=action,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=referral.provider_id,
    )
    await emit(
        session, event(**event_fields(referral)), household_id=referral.household_id, actor=actor
    )
    await record_audit(
        session,
        actor,
        action=f"referral.{action}",
        resource_type="referral",
        resource_id=referral.id,
    )
    return referral


async def accept(
    *, session: AsyncSession, principal: Principal, referral_id: UUID, now: datetime
) -> Referral:
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    accepted = await _simple(
        session, referral, Action.ACCEPT, ReferralAccepted, actor=Actor(principal), now=now
    )
    count_acceptance(session, accepted, now)
    return accepted


async def start(
    *, session: AsyncSession, principal: Principal, referral_id: UUID, now: datetime
) -> Referral:
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    return await _simple(
        session, referral, Action.START, ReferralStarted, actor=Actor(principal), now=now
    )


async def complete(
    *, session: AsyncSession, principal: Principal, referral_id: UUID, now: datetime
) -> Referral:
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    return await _simple(
        session, referral, Action.COMPLETE, ReferralCompleted, actor=Actor(principal), now=now
    )


async def decline(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    reason_code: DeclineReason,
    note: str | None,
    now: datetime,
    settings: ReferralSettings,
) -> Referral:
    """The provider says no: record why, then reroute to the next provider (or the queue)."""
    actor = Actor(principal)
    referral = await load_for_provider(session, referral_id, principal, lock=True)
    previous = apply_action(referral, Action.DECLINE, now)
    await save(
        session,
        referral,
        action=Action.DECLINE,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=referral.provider_id,
        reason_code=reason_code,
        note=note,
    )
    await emit(
        session,
        ReferralDeclined(**event_fields(referral), reason_code=reason_code),
        household_id=referral.household_id,
        actor=actor,
    )
    household = await session.get(HouseholdView, referral.household_id)
    await _route(
        session,
        referral,
        household,
        actor=actor,
        now=now,
        settings=settings,
        reroute_reason="declined",
    )
    await record_audit(
        session,
        actor,
        action="referral.decline",
        resource_type="referral",
        resource_id=referral.id,
        reason=reason_code,
    )
    return referral


async def close(
    session: AsyncSession,
    referral: Referral,
    action: Action,
    *,
    reason_code: str,
    note: str | None = None,
    actor: Actor,
    now: datetime,
) -> Referral:
    """Cancel or revoke an open referral (the provider keeps seeing it, as closed)."""
    previous = apply_action(referral, action, now)
    await save(
        session,
        referral,
        action=action,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=referral.provider_id,
        reason_code=reason_code,
        note=note,
    )
    event = (
        ReferralCancelled(**event_fields(referral), reason_code=reason_code)
        if action == Action.CANCEL
        else ReferralRevoked(**event_fields(referral), reason_code=reason_code)
    )
    await emit(session, event, household_id=referral.household_id, actor=actor)
    await record_audit(
        session,
        actor,
        action=f"referral.{action}",
        resource_type="referral",
        resource_id=referral.id,
        reason=reason_code,
    )
    return referral


async def cancel(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    reason_code: CancelReason,
    note: str | None,
    now: datetime,
) -> Referral:
    referral = await load_for_staff(session, referral_id, principal, lock=True)
    return await close(
        session,
        referral,
        Action.CANCEL,
        reason_code=reason_code,
        note=note,
        actor=Actor(principal),
        now=now,
    )


async def revoke(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    reason_code: RevokeReason,
    note: str | None,
    now: datetime,
) -> Referral:
    referral = await load_for_staff(session, referral_id, principal, lock=True)
    return await close(
        session,
        referral,
        Action.REVOKE,
        reason_code=reason_code,
        note=note,
        actor=Actor(principal),
        now=now,
    )


async def assign(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: UUID,
    provider_id: UUID,
    now: datetime,
    settings: ReferralSettings,
) -> Referral:
    """A manager takes a referral out of the queue and gives it to a provider by hand
    (capacity and region are the manager's call; the service type must match)."""
    actor = Actor(principal)
    referral = await load_for_staff(session, referral_id, principal, lock=True)
    next_status(Status(referral.status), Action.ASSIGN)  # 409 before looking at the provider
    provider = await providers.get(session, provider_id, lock=True)
    if not provider.active or referral.service_type not in provider.services:
        raise ProviderUnsuitable(
            f"Provider {provider_id} does not currently offer {referral.service_type}.",
            provider_id=provider_id,
        )
    previous = apply_action(referral, Action.ASSIGN, now)
    _assign(referral, provider, now, settings)
    await save(
        session,
        referral,
        action=Action.ASSIGN,
        from_status=previous,
        actor=actor,
        now=now,
        provider_id=provider.id,
    )
    await emit(
        session, _sent_event(referral, provider), household_id=referral.household_id, actor=actor
    )
    await record_audit(
        session, actor, action="referral.assign", resource_type="referral", resource_id=referral.id
    )
    return referral


async def close_open_for_household(
    *,
    session: AsyncSession,
    household_id: UUID,
    reason: CancelReason,
    actor: Actor,
    now: datetime,
    keep_consent_overrides: bool = False,
) -> list[Referral]:
    """Cancel the household's open referrals (those made with a consent override stay,
    when asked: their legal basis was never the consent flag)."""
    query = (
        select(Referral)
        .where(Referral.household_id == household_id)
        .where(col(Referral.status).in_([str(s) for s in OPEN_STATUSES]))
        .order_by(col(Referral.id))
        .with_for_update()
    )
    if keep_consent_overrides:
        query = query.where(Referral.consent_override == sa.false())
    open_referrals = list((await session.exec(query)).all())
    for referral in open_referrals:
        await close(session, referral, Action.CANCEL, reason_code=reason, actor=actor, now=now)
    return open_referrals


# --- reading -------------------------------------------------------------------------------


def is_overdue(referral: Referral, now: datetime) -> bool:
    return referral.status == Status.SENT and referral.due_at is not None and referral.due_at <= now


def to_summary(referral: Referral, now: datetime) -> ReferralSummary:
    return ReferralSummary(
        id=referral.id,
        household_id=referral.household_id,
        site_id=referral.site_id,
        service_type=ServiceType(referral.service_type),
        urgency=Urgency(referral.urgency),
        sensitive=referral.sensitive,
        status=Status(referral.status),
        provider_id=referral.provider_id,
        due_at=referral.due_at,
        overdue=is_overdue(referral, now),
        escalation_tier=referral.escalation_tier,
        origin=Origin(referral.origin),
        reason=referral.reason,
        consent_override=referral.consent_override,
        caseworker_sub=referral.caseworker_sub,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
        allowed_actions=[a for a in allowed_actions(Status(referral.status)) if a in STAFF_ACTIONS],
    )


async def history_of(session: AsyncSession, referral_id: UUID) -> list[ReferralHistory]:
    return list(
        (
            await session.exec(
                select(ReferralHistory)
                .where(ReferralHistory.referral_id == referral_id)
                .order_by(col(ReferralHistory.id))
            )
        ).all()
    )


async def to_public(session: AsyncSession, referral: Referral, now: datetime) -> ReferralPublic:
    history = await history_of(session, referral.id)
    return ReferralPublic(
        **to_summary(referral, now).model_dump(),
        history=[HistoryEntryPublic.model_validate(step, from_attributes=True) for step in history],
    )


def to_provider_view(
    referral: Referral,
    household: HouseholdView | None,
    history: Sequence[ReferralHistory],
) -> ProviderReferralView:
    """Only what the provider needs: the one service referred, the household's language,
    size and area. Other providers' steps, notes and reasons stay out."""
    own = [step for step in history if step.provider_id == referral.provider_id]
    return ProviderReferralView(
        id=referral.id,
        household_id=referral.household_id,
        service_type=ServiceType(referral.service_type),
        urgency=Urgency(referral.urgency),
        status=Status(referral.status),
        provider_id=referral.provider_id,
        due_at=referral.due_at,
        sent_at=referral.sent_at,
        household=HouseholdBrief(
            admin1=household.admin1 if household else None,
            admin2=household.admin2 if household else None,
            preferred_language=household.preferred_language if household else None,
            household_size=household.household_size if household else None,
        ),
        allowed_actions=[
            a for a in allowed_actions(Status(referral.status)) if a in PROVIDER_ACTIONS
        ],
        history=[
            ProviderHistoryEntry(at=step.at, action=step.action, to_status=step.to_status)
            for step in own
        ],
    )


async def provider_views(
    session: AsyncSession, referrals: Sequence[Referral]
) -> list[ProviderReferralView]:
    ids = list({r.household_id for r in referrals})
    households: dict[UUID, HouseholdView] = {}
    if ids:
        query = select(HouseholdView).where(col(HouseholdView.household_id).in_(ids))
        households = {h.household_id: h for h in (await session.exec(query)).all()}
    views = []
    for referral in referrals:
        history = await history_of(session, referral.id)
        views.append(to_provider_view(referral, households.get(referral.household_id), history))
    return views


async def page(
    session: AsyncSession,
    *,
    principal: Principal,
    now: datetime,
    after: UUID | None,
    limit: int,
    household_id: UUID | None = None,
    status: Status | None = None,
    service_type: ServiceType | None = None,
    provider_id: UUID | None = None,
    overdue: bool | None = None,
) -> list[Referral]:
    """The referrals the caller may see, filtered, oldest first; the listing is audited."""
    rows = await _find(
        session,
        principal=principal,
        now=now,
        after=after,
        limit=limit,
        household_id=household_id,
        status=status,
        service_type=service_type,
        provider_id=provider_id,
        overdue=overdue,
    )
    await record_audit(
        session,
        Actor(principal),
        action="referral.list",
        resource_type="referral",
        resource_id=None,
    )
    return rows


async def _find(
    session: AsyncSession,
    *,
    principal: Principal,
    now: datetime,
    after: UUID | None,
    limit: int,
    household_id: UUID | None = None,
    status: Status | None = None,
    service_type: ServiceType | None = None,
    provider_id: UUID | None = None,
    overdue: bool | None = None,
) -> list[Referral]:
    """The referrals the caller may see, filtered, oldest first."""
    query = select(Referral).order_by(col(Referral.id)).limit(limit)
    if sees_as_provider(principal):
        org = provider_org(principal)
        if org is None:
            return []
        query = query.where(Referral.provider_id == org)
    else:
        sites = visible_sites(principal)
        if sites is not None:
            query = query.where(col(Referral.site_id).in_(list(sites)))
    if after is not None:
        query = query.where(col(Referral.id) > after)
    if household_id is not None:
        query = query.where(Referral.household_id == household_id)
    if status is not None:
        query = query.where(Referral.status == status)
    if service_type is not None:
        query = query.where(Referral.service_type == service_type)
    if provider_id is not None:
        query = query.where(Referral.provider_id == provider_id)
    if overdue is not None:
        condition = sa.and_(
            col(Referral.status) == Status.SENT,
            col(Referral.due_at).is_not(None),
            col(Referral.due_at) <= now,
        )
        query = query.where(condition if overdue else sa.not_(condition))
    return list((await session.exec(query)).all())


def visible_sites(principal: Principal) -> Collection[str] | None:
    """The sites a staff member may see; None means every site."""
    if Role.ADMIN in principal.roles or "*" in principal.sites:
        return None
    return principal.sites

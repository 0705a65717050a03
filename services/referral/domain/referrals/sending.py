"""Sending a referral: to the best provider not tried yet, or to the managers' queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral.domain import providers, routing
from services.referral.domain.common import Actor, emit
from services.referral.domain.referrals.changes import (
    apply_action,
    event_fields,
    save,
)
from services.referral.domain.states import (
    Action,
    Status,
)
from services.referral.domain.vocabulary import (
    Urgency,
)
from services.referral.models import (
    HouseholdView,
    Provider,
    ProviderAddress,
    Referral,
)
from services.referral.settings import ReferralSettings
from shared.events.referral import (
    ReferralCreated,
    ReferralEscalated,
    ReferralRerouted,
    ReferralSent,
)

MANAGERS_TIER = 3


def give_to(
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


def sent_event(referral: Referral, provider: Provider) -> ReferralSent:
    """Sent, with the organisation's public details for the beneficiary's message (none for a
    sensitive referral: a shelter's name can say what it is)."""
    if referral.sensitive:
        return ReferralSent(**event_fields(referral))
    contact = provider.contact or {}
    address = contact.get("address")
    return ReferralSent(
        **event_fields(referral),
        provider_name=provider.name,
        provider_address=ProviderAddress.model_validate(address).one_line() if address else None,
        provider_opening_hours=provider.opening_hours,
        provider_phone=contact.get("phone"),
    )


async def route(
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
        session, service_types=[referral.service_type], regions=regions_of(household)
    )
    from_status = Status(referral.status)
    first = from_status == Status.CREATED
    provider = move(referral, household, found, now=now, settings=settings)
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
        routed_event(referral, provider),
        household_id=referral.household_id,
        actor=actor,
    )
    return provider


def regions_of(household: HouseholdView | None) -> list[str]:
    """Where routing looks for providers: the household's admin2, then its admin1."""
    return [r for r in (household.admin2, household.admin1) if r] if household else []


def move(
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
        give_to(referral, provider, now, settings)
        return provider
    apply_action(referral, Action.QUEUE, now)
    referral.provider_id = None
    referral.due_at = None
    referral.overdue_at = None
    referral.escalation_tier = 0
    return None


def routed_event(referral: Referral, provider: Provider | None) -> ReferralSent | ReferralEscalated:
    """What routing announces: sent to ``provider``, or queued for the managers."""
    return sent_event(referral, provider) if provider else _queued_event(referral)


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
    return await route(
        session, referral, household, actor=actor, now=now, settings=settings, reroute_reason=reason
    )

"""Household profile events: the read model, then the automatic referrals or consent tasks."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlmodel.ext.asyncio.session import AsyncSession

from services.referral import queries
from services.referral.domain import consent, referrals
from services.referral.domain.common import Actor, caused_by, record_audit
from services.referral.domain.errors import ConcurrentFirstProfile
from services.referral.domain.rules import (
    AskConsent,
    Refer,
    automatic_actions,
    required_services,
)
from services.referral.domain.vocabulary import CancelReason, Origin
from services.referral.models import HouseholdView
from services.referral.settings import ReferralSettings
from shared.consumer import acting_on, distinct_runs
from shared.db import run
from shared.events.envelope import Envelope
from shared.events.registration import (
    HouseholdProfile,
)
from shared.vocabulary import HouseholdStatus

ACTS_ON = frozenset({HouseholdStatus.ACTIVE, HouseholdStatus.PENDING_REVIEW})
"""Household statuses for which automatic referrals are made."""


@dataclass(frozen=True)
class ProfileEvent:
    """A household profile as one event carried it: who acts because of it, and when."""

    profile: HouseholdProfile
    actor: Actor
    now: datetime
    envelope: Envelope[Any] | None = None

    @classmethod
    def of(cls, envelope: Envelope[HouseholdProfile], now: datetime) -> ProfileEvent:
        """The event as delivered: the service acts because of it."""
        return cls(envelope.data, caused_by(envelope), now, envelope)


@dataclass(frozen=True)
class Held:
    """What taking a profile found: whether it was written, and what the household held
    before (no ``version`` when it was not known here)."""

    taken: bool
    version: int | None
    referral_sharing: bool | None
    profile: dict[str, Any] | None


def view_row(event: ProfileEvent) -> dict[str, Any]:
    """The read-model row a profile event describes (for :func:`pydantic_core.to_json`)."""
    profile = event.profile
    return {
        "household_id": profile.household_id,
        "site_id": profile.site_id,
        "status": profile.status.value,
        "version": profile.version,
        "referral_sharing": profile.consent.referral_sharing,
        "admin1": profile.location.admin1,
        "admin2": profile.location.admin2,
        "preferred_language": profile.preferred_language,
        "household_size": profile.household_size,
        "profile": profile,
        "updated_at": event.now,
    }


async def take_profiles(*, session: AsyncSession, events: Sequence[ProfileEvent]) -> list[Held]:
    """Take profiles of distinct households into the read model in one statement; what each
    household held before, in the events' order. Raises :class:`ConcurrentFirstProfile`
    when a household was inserted meanwhile by another transaction."""
    # Serialised by pydantic in one pass (the profile as model_dump(mode="json") has it)
    rows = to_json([view_row(event) for event in events], by_alias=False).decode()
    result: Sequence[Any] = (await run(session, queries.TAKE_PROFILES, {"rows": rows})).all()
    held = [Held(*row) for row in result]  # the profile comes decoded
    for event, found in zip(events, held, strict=True):
        if not found.taken and found.version is None:
            household_id = event.profile.household_id
            raise ConcurrentFirstProfile(f"household {household_id} inserted meanwhile")
    return held


async def apply_profiles(
    *, session: AsyncSession, events: Sequence[ProfileEvent], settings: ReferralSettings
) -> list[bool]:
    """Apply profile events in order, as if one by one: each run of events in which no
    household repeats is taken into the read model in one statement, then each of its
    events is acted on in order, with its own correlation id and span. Consecutive
    households first seen here (most) have their referrals routed and written together.
    True for each event that was taken, False for a stale version."""
    taken: list[bool] = []
    for distinct in distinct_runs(events, key=lambda event: event.profile.household_id):
        held = await take_profiles(session=session, events=distinct)
        new_ones: list[tuple[ProfileEvent, list[Refer | AskConsent]]] = []
        for event, found in zip(distinct, held, strict=True):
            taken.append(found.taken)
            if not found.taken:
                continue
            if found.version is None:
                actions = _actions(event.profile, None)
                if actions:
                    new_ones.append((event, actions))
                continue
            await _act_on_first_seen(session=session, events=new_ones, settings=settings)
            new_ones = []
            with _acting_on(event):
                acted = await _act_on_profile(
                    session=session, event=event, held=found, settings=settings
                )
            if acted:  # the next event starts from the database, as in a session of its own
                await session.flush()
                session.expunge_all()
        await _act_on_first_seen(session=session, events=new_ones, settings=settings)
    return taken


async def apply_profile(
    *,
    session: AsyncSession,
    profile: HouseholdProfile,
    actor: Actor,
    at: datetime,
    settings: ReferralSettings,
) -> bool:
    """Take a newer profile into the read model and act on it; False for a stale version."""
    (taken,) = await apply_profiles(
        session=session, events=[ProfileEvent(profile, actor, at)], settings=settings
    )
    return taken


async def _act_on_profile(
    *, session: AsyncSession, event: ProfileEvent, held: Held, settings: ReferralSettings
) -> bool:
    """What a newer profile of a household known here calls for: cancel what relied on
    withdrawn consent, then make the automatic referrals (or consent tasks) its new needs call
    for, unless one is open already. False when nothing was done (most households)."""
    profile, actor, now = event.profile, event.actor, event.now
    withdrawn = bool(held.referral_sharing) and not profile.consent.referral_sharing
    if withdrawn:
        await referrals.close_open_for_household(
            session=session,
            household_id=profile.household_id,
            reason=CancelReason.CONSENT_WITHDRAWN,
            actor=actor,
            now=now,
            keep_consent_overrides=True,
        )
    previous = HouseholdProfile.model_validate(held.profile) if held.profile else None
    actions = _actions(profile, previous)
    if not actions:
        return withdrawn
    for action in actions:
        if isinstance(action, Refer):
            if await referrals.open_referral(
                session, household_id=profile.household_id, service_type=action.service_type
            ):
                continue
            referral = await referrals.create(
                session=session,
                household=_routing_view(profile, now),
                service_type=action.service_type,
                urgency=action.urgency,
                origin=Origin.AUTOMATIC,
                actor=actor,
                now=now,
                settings=settings,
            )
            await record_audit(
                session,
                actor,
                action="referral.create",
                resource_type="referral",
                resource_id=referral.id,
                reason="automatic",
            )
        elif isinstance(action, AskConsent):
            await consent.request_consent(
                session=session,
                household_id=profile.household_id,
                site_id=profile.site_id,
                service_type=action.service_type,
                actor=actor,
                now=now,
            )
    return True


def _actions(
    profile: HouseholdProfile, previous: HouseholdProfile | None
) -> list[Refer | AskConsent]:
    """The automatic referrals and consent tasks a newer profile calls for."""
    if profile.status not in ACTS_ON or not required_services(profile):
        return []  # most households: nothing to refer, no previous profile to read
    return list(automatic_actions(previous, profile))


def _routing_view(profile: HouseholdProfile, now: datetime) -> HouseholdView:
    """The household as routing reads it (the row just written)."""
    return HouseholdView(
        household_id=profile.household_id,
        site_id=profile.site_id,
        status=profile.status.value,
        version=profile.version,
        referral_sharing=profile.consent.referral_sharing,
        admin1=profile.location.admin1,
        admin2=profile.location.admin2,
        preferred_language=profile.preferred_language,
        household_size=profile.household_size,
        updated_at=now,
    )


def _acting_on(event: ProfileEvent) -> AbstractContextManager[None]:
    return acting_on(event.envelope) if event.envelope else nullcontext()


async def _act_on_first_seen(
    *,
    session: AsyncSession,
    events: Sequence[tuple[ProfileEvent, list[Refer | AskConsent]]],
    settings: ReferralSettings,
) -> None:
    """The referrals and consent tasks of consecutive households first seen here, as their
    events one by one would make them. Such a household has nothing open: referrals and
    consent tasks are only made for, or moved by a merge to, a household this table holds
    (the partial unique indexes would refuse a second open one anyway). Their referrals are
    routed and written together, their consent tasks written together at the end; each
    event's events and audit records are staged in its own turn."""
    if not events:
        return
    wanted = [
        referrals.NewAutomatic(
            _routing_view(event.profile, event.now),
            action.service_type,
            action.urgency,
            event.actor,
            event.now,
        )
        for event, actions in events
        for action in actions
        if isinstance(action, Refer)
    ]
    created = iter(
        await referrals.create_automatic_together(session=session, wanted=wanted, settings=settings)
        if wanted
        else []
    )
    for event, actions in events:
        with _acting_on(event):
            for action in actions:
                if isinstance(action, Refer):
                    await referrals.announce(session, next(created))
                else:
                    task = consent.open_new(
                        session=session,
                        household_id=event.profile.household_id,
                        site_id=event.profile.site_id,
                        service_type=action.service_type,
                        now=event.now,
                    )
                    await consent.announce(session, task, actor=event.actor)
    await session.flush()
    session.expunge_all()

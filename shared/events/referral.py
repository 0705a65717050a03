"""Events of the referral service. Household-keyed; no names, documents or personal contacts.

``ReferralSent`` carries the provider ORGANISATION's public details (name, address, opening
hours, switchboard phone) so that notifications can tell the beneficiary where to go; those
describe the organisation, never a person.

Sensitive referrals (counter-trafficking, GBV: ``sensitive: true``) never name their service
type on this topic: ``service_type`` is then :data:`SENSITIVE_SERVICE_LABEL` and a
``ReferralSent`` carries no provider details (their name alone may say what the service is).
Consumers say "a protection referral" for them, and never look the type up elsewhere.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from shared.events.envelope import EventPayload

EscalationAudience = Literal["provider", "caseworker", "manager"]

SENSITIVE_SERVICE_LABEL = "protection"
"""The neutral ``service_type`` of every sensitive referral's (and consent task's) events."""

# Service types whose very name may endanger the person: the one list that referral and
# notifications decide sensitivity from.
SENSITIVE_SERVICE_TYPES: frozenset[str] = frozenset({"counter_trafficking", "gbv"})


class ReferralEvent(EventPayload):
    """Fields every referral event carries (the referral as it is after the change)."""

    referral_id: UUID
    household_id: UUID
    service_type: str
    urgency: str
    status: str
    provider_id: UUID | None = None
    due_at: datetime | None = None
    site_id: str | None = None
    # A sensitive service type (counter-trafficking, GBV): ``service_type`` is then the neutral
    # SENSITIVE_SERVICE_LABEL; say nothing revealing in any message.
    sensitive: bool = False


class ReferralCreated(ReferralEvent):
    origin: Literal["automatic", "manual"] = "manual"
    consent_override: bool = False


class ReferralSent(ReferralEvent):
    """Sent to ``provider_id``; the provider organisation's public details for the message."""

    provider_name: str | None = None
    provider_address: str | None = None
    provider_opening_hours: str | None = None
    provider_phone: str | None = None


class ReferralAccepted(ReferralEvent):
    pass


class ReferralDeclined(ReferralEvent):
    reason_code: str | None = None


class ReferralRerouted(ReferralEvent):
    """Moved from ``previous_provider_id`` to ``provider_id`` (None: to the managers' queue)."""

    previous_provider_id: UUID | None = None
    reason_code: Literal["declined", "deadline"] | None = None


class ReferralStarted(ReferralEvent):
    pass


class ReferralCompleted(ReferralEvent):
    pass


class ReferralCancelled(ReferralEvent):
    reason_code: str | None = None


class ReferralRevoked(ReferralEvent):
    reason_code: str | None = None


class ReferralOverdue(ReferralEvent):
    """Not accepted by ``due_at``; emitted once per provider the referral was sent to."""


class ReferralEscalated(ReferralEvent):
    """Tier 1 reminds the provider, 2 the supervising caseworker, 3 the managers."""

    tier: int
    audience: EscalationAudience | None = None
    reason_code: Literal["deadline", "no_provider"] | None = None
    # The supervising caseworker (staff subject) when known; None means the site's caseworkers.
    caseworker_sub: str | None = None


class ConsentFollowUpRequested(EventPayload):
    """A caseworker should ask the household for referral-sharing consent."""

    task_id: UUID
    household_id: UUID
    service_type: str
    site_id: str | None = None
    # As on referral events: when true, ``service_type`` is SENSITIVE_SERVICE_LABEL.
    sensitive: bool = False

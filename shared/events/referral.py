"""Events of the referral service. Household-keyed; no names, documents or contacts."""

from datetime import datetime
from uuid import UUID

from shared.events.envelope import EventPayload


class ReferralEvent(EventPayload):
    """Fields every referral event carries."""

    referral_id: UUID
    household_id: UUID
    service_type: str
    urgency: str
    status: str
    provider_id: UUID | None = None
    due_at: datetime | None = None


class ReferralCreated(ReferralEvent):
    pass


class ReferralSent(ReferralEvent):
    pass


class ReferralAccepted(ReferralEvent):
    pass


class ReferralDeclined(ReferralEvent):
    reason_code: str | None = None


class ReferralRerouted(ReferralEvent):
    previous_provider_id: UUID | None = None


class ReferralStarted(ReferralEvent):
    pass


class ReferralCompleted(ReferralEvent):
    pass


class ReferralCancelled(ReferralEvent):
    pass


class ReferralRevoked(ReferralEvent):
    pass


class ReferralOverdue(ReferralEvent):
    pass


class ReferralEscalated(ReferralEvent):
    tier: int


class ConsentFollowUpRequested(EventPayload):
    task_id: UUID
    household_id: UUID
    service_type: str

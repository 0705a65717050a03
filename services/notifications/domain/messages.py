"""The messages Haven sends: which event, to whom, and which variables its templates may use.

A template's variables are the event payload's fields (minus those a message must never
show, such as members and vulnerabilities) plus a few the service adds. New payload fields
become usable as soon as the payload module declares them, so templates can follow the
other services' events without a change here.

A referral to a sensitive service (``SENSITIVE_SERVICE_TYPES``: counter-trafficking...) never
gives its templates the real type: their context says ``protection`` and holds no provider
details, so no template, however an admin edits it, can print what the referral is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.notifications.models import Audience
from shared.events.distribution import DistributionRecorded, ShelterAllocated, StockLow
from shared.events.envelope import EventPayload
from shared.events.referral import (
    SENSITIVE_SERVICE_TYPES,
    ReferralAccepted,
    ReferralEscalated,
    ReferralEvent,
    ReferralOverdue,
    ReferralSent,
)
from shared.events.registration import DuplicateReviewRequested, HouseholdRegistered

# Added by the service: the case number from the household's contact (beneficiaries) or
# from the registration events (staff; None when not known yet), and the site.
BENEFICIARY_EXTRAS = frozenset({"case_number"})
STAFF_EXTRAS = frozenset({"case_number", "site_id"})

# A household profile is kept only as far as a message needs it: the confirmation's case
# number comes from the contact when it is sent, so of the profile only the site is kept. An
# allow-list: what registration adds to its profiles later is not kept here by default.
HOUSEHOLD_PROFILE_KEPT = frozenset({"site_id"})


# What a sensitive referral's templates see instead: the type of an ordinary protection
# referral, and no provider (its name or id could tell the service).
NEUTRAL_SERVICE_TYPE = "protection"
SENSITIVE_REDACTED: dict[str, Any] = {
    "service_type": NEUTRAL_SERVICE_TYPE,
    "provider_id": None,
    "provider_name": None,
    "provider_address": None,
    "provider_opening_hours": None,
    "provider_phone": None,
}
# Staff alerts do not even say that a referral is sensitive: it would single out the type.
STAFF_REFERRAL_HIDDEN = frozenset({"sensitive"})


def is_sensitive(payload: EventPayload) -> bool:
    """Whether the event concerns a referral to a sensitive service. The shared list decides;
    the payload's own flag can only add to it."""
    if not isinstance(payload, ReferralEvent):
        return False
    return payload.service_type in SENSITIVE_SERVICE_TYPES or payload.sensitive


@dataclass(frozen=True)
class MessageKind:
    """One message: sent for ``event`` to ``audience``."""

    event: type[EventPayload]
    audience: Audience
    summary: str
    hidden: frozenset[str] = frozenset()
    # When set, only these payload fields are template variables (an allow-list).
    only: frozenset[str] | None = None

    @property
    def event_type(self) -> str:
        return self.event.event_type

    def payload_variables(self) -> frozenset[str]:
        fields = frozenset(self.event.model_fields)
        if self.only is not None:
            fields &= self.only
        return fields - self.hidden

    def variables(self) -> frozenset[str]:
        extras = BENEFICIARY_EXTRAS if self.audience is Audience.BENEFICIARY else STAFF_EXTRAS
        return self.payload_variables() | extras

    def context(self, payload: EventPayload) -> dict[str, Any]:
        """The payload's template variables, as JSON (what a notification row keeps)."""
        data = payload.model_dump(mode="json")
        if is_sensitive(payload):
            data |= SENSITIVE_REDACTED
        return {name: data[name] for name in self.payload_variables() if name in data}


MESSAGES: dict[str, MessageKind] = {
    kind.event_type: kind
    for kind in (
        MessageKind(
            HouseholdRegistered,
            Audience.BENEFICIARY,
            "Registration confirmation with the case number.",
            only=HOUSEHOLD_PROFILE_KEPT,
        ),
        MessageKind(DistributionRecorded, Audience.BENEFICIARY, "Receipt for what was handed out."),
        MessageKind(ShelterAllocated, Audience.BENEFICIARY, "Shelter beds allocated."),
        MessageKind(ReferralSent, Audience.BENEFICIARY, "Referred to a provider."),
        MessageKind(ReferralAccepted, Audience.BENEFICIARY, "The provider accepted the referral."),
        MessageKind(StockLow, Audience.STAFF, "Stock below reorder level (warehouse managers)."),
        MessageKind(
            DuplicateReviewRequested, Audience.STAFF, "Duplicate review waiting (supervisors)."
        ),
        MessageKind(
            ReferralOverdue,
            Audience.STAFF,
            "Referral not accepted in time.",
            hidden=STAFF_REFERRAL_HIDDEN,
        ),
        MessageKind(
            ReferralEscalated,
            Audience.STAFF,
            "Overdue referral escalated to a tier.",
            hidden=STAFF_REFERRAL_HIDDEN,
        ),
    )
}

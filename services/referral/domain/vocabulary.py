"""The referral service's controlled vocabularies."""

from enum import StrEnum

from shared.events.referral import SENSITIVE_SERVICE_LABEL
from shared.events.referral import SENSITIVE_SERVICE_TYPES as SENSITIVE_TYPE_NAMES
from shared.vocabulary import Priority

Urgency = Priority
"""urgent | high | normal — the same scale as a registration need's priority."""


class ServiceType(StrEnum):
    MEDICAL = "medical"
    LEGAL = "legal"
    PSYCHOSOCIAL = "psychosocial"
    PROTECTION = "protection"
    COUNTER_TRAFFICKING = "counter_trafficking"
    EMPLOYMENT = "employment"
    VOLUNTARY_RETURN = "voluntary_return"
    SHELTER = "shelter"
    GBV = "gbv"  # gender-based violence response (case management, safe shelter)

    @property
    def sensitive(self) -> bool:
        """Revealing it may endanger the person: see :data:`SENSITIVE_SERVICE_TYPES`."""
        return self in SENSITIVE_SERVICE_TYPES


SENSITIVE_SERVICE_TYPES = frozenset(ServiceType(name) for name in SENSITIVE_TYPE_NAMES)
"""The one list of sensitive service types. Their referrals are seen only by the provider they
are with, the staff member who made them and protection focal points; managers see them in
counts only; their events name no service type (``shared.events.referral``)."""


def on_the_wire(service_type: str) -> tuple[str, bool]:
    """The ``service_type`` and ``sensitive`` an event carries for ``service_type``: a
    sensitive type is never named on the general referrals topic."""
    sensitive = ServiceType(service_type).sensitive
    return (SENSITIVE_SERVICE_LABEL if sensitive else service_type), sensitive


class Origin(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    OUT_OF_SCOPE = "out_of_scope"
    LANGUAGE = "language"
    NOT_REACHABLE = "not_reachable"
    OTHER = "other"


class CancelReason(StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    HOUSEHOLD_REQUEST = "household_request"
    DUPLICATE = "duplicate"
    OTHER = "other"
    # Set by the service itself, not chosen by a caseworker:
    CONSENT_WITHDRAWN = "consent_withdrawn"
    HOUSEHOLD_DEACTIVATED = "household_deactivated"
    HOUSEHOLD_ERASED = "household_erased"
    MERGED_DUPLICATE = "merged_duplicate"


CASEWORKER_CANCEL_REASONS = (
    CancelReason.NO_LONGER_NEEDED,
    CancelReason.HOUSEHOLD_REQUEST,
    CancelReason.DUPLICATE,
    CancelReason.OTHER,
)


class RevokeReason(StrEnum):
    CONSENT_WITHDRAWN = "consent_withdrawn"
    SAFEGUARDING = "safeguarding"
    PROVIDER_CONCERN = "provider_concern"
    OTHER = "other"


class ConsentTaskStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # consent given, or a referral made with an override
    CLOSED = "closed"  # no longer needed: household deactivated, merged away

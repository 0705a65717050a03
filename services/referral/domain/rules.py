"""Automatic referrals: which service types a household's profile calls for. Pure functions.

| profile | service type | urgency |
|---|---|---|
| a `medical_care` need | medical | the need's priority |
| a member with `serious_medical_condition` | medical | normal (or the need's, if higher) |
| a `legal_aid` need | legal | the need's priority |
| a member who is a `survivor_of_trafficking` | counter_trafficking (sensitive) | high |
| a `psychosocial_support` need | psychosocial | the need's priority |
| a `voluntary_return` need | voluntary_return | the need's priority |

A profile event acts only on what is *new* in it compared with the version held before:
a service type that was already called for (with consent) does not produce a second referral
when an unrelated field changes, or after a caseworker closed the first one.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.referral.domain.vocabulary import ServiceType, Urgency
from shared.events.registration import HouseholdProfile
from shared.vocabulary import NeedType, Vulnerability

NEED_RULES: dict[NeedType, ServiceType] = {
    NeedType.MEDICAL_CARE: ServiceType.MEDICAL,
    NeedType.LEGAL_AID: ServiceType.LEGAL,
    NeedType.PSYCHOSOCIAL_SUPPORT: ServiceType.PSYCHOSOCIAL,
    NeedType.VOLUNTARY_RETURN: ServiceType.VOLUNTARY_RETURN,
}

VULNERABILITY_RULES: dict[Vulnerability, tuple[ServiceType, Urgency]] = {
    Vulnerability.SERIOUS_MEDICAL_CONDITION: (ServiceType.MEDICAL, Urgency.NORMAL),
    Vulnerability.SURVIVOR_OF_TRAFFICKING: (ServiceType.COUNTER_TRAFFICKING, Urgency.HIGH),
}

_URGENCY_RANK = {Urgency.NORMAL: 0, Urgency.HIGH: 1, Urgency.URGENT: 2}


def most_urgent(a: Urgency, b: Urgency) -> Urgency:
    return a if _URGENCY_RANK[a] >= _URGENCY_RANK[b] else b


def required_services(profile: HouseholdProfile) -> dict[ServiceType, Urgency]:
    """The service types the profile calls for, each with its urgency."""
    required: dict[ServiceType, Urgency] = {}

    def add(service: ServiceType, urgency: Urgency) -> None:
        current = required.get(service)
        required[service] = urgency if current is None else most_urgent(current, urgency)

    for need in profile.needs:
        service = NEED_RULES.get(need.type)
        if service is not None:
            add(service, Urgency(need.priority))
    for member in profile.members:
        for vulnerability in member.vulnerabilities:
            rule = VULNERABILITY_RULES.get(vulnerability)
            if rule is not None:
                add(*rule)
    return required


@dataclass(frozen=True)
class Refer:
    """Create a referral (unless one is already open for this service type)."""

    service_type: ServiceType
    urgency: Urgency


@dataclass(frozen=True)
class AskConsent:
    """Ask a caseworker to seek referral-sharing consent (never refer without it)."""

    service_type: ServiceType


def automatic_actions(
    previous: HouseholdProfile | None, current: HouseholdProfile
) -> list[Refer | AskConsent]:
    """What a new version of a household's profile asks of the referral service."""
    wanted = required_services(current)
    before = required_services(previous) if previous is not None else {}
    consent_before = previous is not None and previous.consent.referral_sharing
    actions: list[Refer | AskConsent] = []
    for service, urgency in sorted(wanted.items()):
        already_wanted = service in before
        if current.consent.referral_sharing:
            if not (already_wanted and consent_before):
                actions.append(Refer(service, urgency))
        elif not already_wanted:
            actions.append(AskConsent(service))
    return actions

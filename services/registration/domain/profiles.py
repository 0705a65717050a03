"""What leaves registration about a household: the pseudonymous profile and the contact card.

Profiles carry ids, site, location codes, size, members' sex and age bands, needs,
vulnerability categories, language and consent flags — never names, documents, birth dates
or phone numbers. Contact details go only on the restricted, compacted contacts topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from services.registration.domain.ages import age_band
from services.registration.models import Household, Member, Relationship
from shared.events.registration import (
    ConsentFlags,
    HouseholdContact,
    HouseholdProfile,
    Location,
    MemberProfile,
    Need,
)
from shared.vocabulary import HouseholdStatus, NeedType, Priority, Sex, Vulnerability

ProfileEvent = TypeVar("ProfileEvent", bound=HouseholdProfile)


def member_profile(member: Member, today: date) -> MemberProfile:
    return MemberProfile(
        member_id=member.id,
        sex=Sex(member.sex),
        age_band=age_band(member, today),
        is_head=member.relationship == Relationship.HEAD,
        vulnerabilities=tuple(Vulnerability(v) for v in sorted(member.vulnerabilities)),
    )


def profile(
    event: type[ProfileEvent], household: Household, members: Sequence[Member], today: date
) -> ProfileEvent:
    """The full pseudonymous profile as ``event`` (consumers upsert from any of them)."""
    assert household.admin1 and household.displacement_status and household.preferred_language
    return event(
        household_id=household.id,
        case_number=household.case_number,
        site_id=household.site_id,
        location=Location(admin1=household.admin1, admin2=household.admin2),
        displacement_status=household.displacement_status,
        arrival_date=household.arrival_date,
        status=HouseholdStatus(household.status),
        household_size=len(members),
        members=tuple(member_profile(m, today) for m in members),
        needs=tuple(
            Need(type=NeedType(n["type"]), priority=Priority(n["priority"]))
            for n in household.needs
        ),
        preferred_language=household.preferred_language,
        consent=ConsentFlags(
            data_processing=bool(household.consent_data_processing),
            referral_sharing=bool(household.consent_referral_sharing),
            contact=bool(household.consent_contact),
        ),
        version=household.version,
    )


@dataclass(frozen=True)
class ContactCard:
    """What notifications may know to reach a household (only with contact consent)."""

    consent: bool
    phone: str | None
    preferred_language: str | None
    case_number: str
    site_id: str

    @classmethod
    def of(cls, household: Household) -> ContactCard:
        return cls(
            consent=bool(household.consent_contact),
            phone=household.phone,
            preferred_language=household.preferred_language,
            case_number=household.case_number,
            site_id=household.site_id,
        )

    def payload(self, household: Household) -> HouseholdContact:
        assert self.preferred_language is not None
        return HouseholdContact(
            household_id=household.id,
            case_number=self.case_number,
            site_id=self.site_id,
            phone=self.phone,
            preferred_language=self.preferred_language,
            contact_consent=self.consent,
        )

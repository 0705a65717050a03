"""Events of the registration service. Pseudonymous: never names, documents, birth dates
or phone numbers; those stay in registration, and contact details travel only on the
restricted contacts topic."""

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventPayload
from shared.vocabulary import (
    AgeBand,
    DisplacementStatus,
    HouseholdStatus,
    NeedType,
    Priority,
    Sex,
    Vulnerability,
)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberProfile(_Part):
    member_id: UUID
    sex: Sex
    age_band: AgeBand
    is_head: bool
    vulnerabilities: tuple[Vulnerability, ...] = ()


class Need(_Part):
    type: NeedType
    priority: Priority = Priority.NORMAL


class ConsentFlags(_Part):
    data_processing: bool
    referral_sharing: bool
    contact: bool


class Location(_Part):
    admin1: str
    admin2: str | None = None


class HouseholdProfile(EventPayload):
    """The pseudonymous picture of a household that downstream services keep."""

    household_id: UUID
    case_number: str
    site_id: str
    location: Location
    displacement_status: DisplacementStatus
    arrival_date: date | None = None
    status: HouseholdStatus
    household_size: int = Field(ge=1)
    members: tuple[MemberProfile, ...]
    needs: tuple[Need, ...] = ()
    preferred_language: str
    consent: ConsentFlags
    version: int = Field(ge=1)


class HouseholdRegistered(HouseholdProfile):
    pass


class HouseholdUpdated(HouseholdProfile):
    pass


class NeedsAssessed(HouseholdProfile):
    pass


class VulnerabilitiesFlagged(HouseholdProfile):
    pass


class HouseholdDeactivated(EventPayload):
    household_id: UUID
    site_id: str
    reason_code: str
    version: int


class HouseholdsMerged(EventPayload):
    """``merged_id`` is folded into ``surviving_id``; downstream re-keys what it holds."""

    surviving_id: UUID
    merged_id: UUID
    site_id: str


class HouseholdErased(EventPayload):
    household_id: UUID
    site_id: str


class DuplicateReviewRequested(EventPayload):
    review_id: UUID
    household_id: UUID
    site_id: str
    score: float
    reasons: tuple[str, ...]


class HouseholdContact(EventPayload):
    """Contact details for notifications only (compacted topic; a tombstone erases them)."""

    household_id: UUID
    case_number: str
    site_id: str
    phone: str | None
    preferred_language: str
    contact_consent: bool

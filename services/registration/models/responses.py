"""Response shapes of the registration service (``XPublic``, pages, the registration result)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, Field

from services.registration.models.tables import (
    DeactivationReason,
    DocumentType,
    Relationship,
    ReviewResolution,
    ReviewStatus,
)
from shared.vocabulary import (
    DisplacementStatus,
    HouseholdStatus,
    NeedType,
    Priority,
    Sex,
    Vulnerability,
)

# --- sites ---------------------------------------------------------------------------------


class SiteBase(BaseModel):
    id: str = Field(description="Site code, also the prefix of its case numbers: MDA-CHI.")
    name: str
    country: str = Field(description="ISO 3166-1 alpha-3.")
    admin1: str = Field(description="Admin level 1 p-code.")
    admin2: str | None = Field(None, description="Admin level 2 p-code.")
    timezone: str = Field(description="IANA time zone, e.g. Europe/Chisinau.")


class SitePublic(SiteBase):
    pass


class SitePage(BaseModel):
    items: list[SitePublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


# --- households: responses -----------------------------------------------------------------


class DocumentPublic(BaseModel):
    type: DocumentType
    number: str
    issuing_country: str


class MemberPublic(BaseModel):
    id: UUID
    given_name: str
    family_name: str | None
    sex: Sex
    date_of_birth: date | None
    estimated_age: int | None
    relationship: Relationship
    nationality: str
    documents: list[DocumentPublic]
    vulnerabilities: list[Vulnerability] = Field(
        description="Sensitive categories (survivor_of_trafficking, survivor_of_gbv) appear "
        "only for caseworkers and administrators."
    )


class LocationPublic(BaseModel):
    admin1: str
    admin2: str | None
    settlement: str | None


class ConsentPublic(BaseModel):
    data_processing: bool
    referral_sharing: bool
    contact: bool
    given_at: datetime


class NeedPublic(BaseModel):
    type: NeedType
    priority: Priority


class HouseholdPublic(BaseModel):
    id: UUID
    case_number: str
    site_id: str
    location: LocationPublic
    displacement_status: DisplacementStatus
    arrival_date: date | None
    preferred_language: str
    phone: str | None
    consent: ConsentPublic
    status: HouseholdStatus
    version: int
    members: list[MemberPublic]
    needs: list[NeedPublic]
    registered_at: datetime
    updated_at: datetime
    merged_into: UUID | None = None
    deactivation_reason: DeactivationReason | None = None


class HouseholdPage(BaseModel):
    items: list[HouseholdPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class PossibleDuplicate(BaseModel):
    """A candidate the caller may see: at one of their sites (or any site, for supervisors)."""

    household_id: UUID
    case_number: str
    site_id: str
    score: float
    reasons: list[str]


AT_ANOTHER_SITE = (
    "True when a household at a site outside yours may be the same people. Nothing more is "
    "said about it (no site, case number or score): a supervisor reviews cross-site pairs."
)


class RegistrationResult(BaseModel):
    id: UUID
    case_number: str
    status: HouseholdStatus
    possible_duplicates: list[PossibleDuplicate] = Field(
        description="Candidates at your sites, best first."
    )
    possible_duplicate_at_another_site: bool = Field(False, description=AT_ANOTHER_SITE)


class DuplicateReviewPublic(BaseModel):
    id: UUID
    household_id: UUID
    case_number: str
    site_id: str
    status: ReviewStatus
    score: float | None = Field(
        description="The best score among the candidates you see (null when you see none)."
    )
    reasons: list[str] = Field(description="The reasons of the candidates you see.")
    candidates: list[PossibleDuplicate]
    possible_duplicate_at_another_site: bool = Field(False, description=AT_ANOTHER_SITE)
    created_at: datetime
    resolved_at: datetime | None
    resolution: ReviewResolution | None
    merge_into: UUID | None


class DuplicateReviewPage(BaseModel):
    items: list[DuplicateReviewPublic]
    next_cursor: str | None

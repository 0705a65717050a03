"""Tables and API shapes of the registration service.

Tables (SQLModel, created by the hand-written migrations) come first; then the request shapes
(`XCreate` / `XUpdate`, strict: unknown fields are refused, text is NFC without control
characters) and the response shapes (`XPublic`).
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal
from uuid import UUID

import pycountry
import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator
from pydantic import model_validator as pydantic_model_validator
from sqlalchemy.dialects import postgresql
from sqlmodel import Field as TableField
from sqlmodel import SQLModel

from services.registration.domain.names import document_number_key
from shared.validation import CleanText, StrictModel
from shared.vocabulary import (
    DisplacementStatus,
    HouseholdStatus,
    NeedType,
    Priority,
    Sex,
    Vulnerability,
)

metadata = SQLModel.metadata

MAX_MEMBERS = 30
MAX_DOCUMENTS = 10
MAX_AGE_YEARS = 120
NAME_MAX_LENGTH = 100
DOCUMENT_NUMBER_MIN_CHARACTERS = 2
SITE_ID_PATTERN = r"^[A-Z]{3}-[A-Z0-9]{2,10}$"
PCODE_PATTERN = r"^[A-Z]{2,3}[A-Z0-9]{0,12}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# ICAO Doc 9303 codes for people without a nationality or with an unknown one.
ICAO_SPECIAL_NATIONALITIES = frozenset({"XXA", "XXB", "XXC", "XXX"})
# A device's "today" may be a day ahead of UTC; dates up to then are not "in the future".
DATE_SKEW = timedelta(days=1)
CONSENT_CLOCK_SKEW = timedelta(minutes=10)


class Relationship(StrEnum):
    """A member's relationship to the head of the household."""

    HEAD = "head"
    SPOUSE_OR_PARTNER = "spouse_or_partner"
    CHILD = "child"
    PARENT = "parent"
    SIBLING = "sibling"
    GRANDCHILD = "grandchild"
    GRANDPARENT = "grandparent"
    OTHER_RELATIVE = "other_relative"
    NON_RELATIVE = "non_relative"


class DocumentType(StrEnum):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    BIRTH_CERTIFICATE = "birth_certificate"
    RESIDENCE_PERMIT = "residence_permit"
    REFUGEE_CERTIFICATE = "refugee_certificate"
    TEMPORARY_PROTECTION_CERTIFICATE = "temporary_protection_certificate"
    DRIVING_LICENCE = "driving_licence"
    OTHER = "other"


class DeactivationReason(StrEnum):
    RELOCATED = "relocated"
    RETURNED_HOME = "returned_home"
    DECEASED = "deceased"
    DUPLICATE = "duplicate"
    NO_LONGER_ELIGIBLE = "no_longer_eligible"
    LOST_CONTACT = "lost_contact"
    OTHER = "other"


class ReviewStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"  # the household was deactivated or erased before anyone decided


class ReviewResolution(StrEnum):
    MERGE = "merge"
    NOT_DUPLICATE = "not_duplicate"
    HOUSEHOLD_DEACTIVATED = "household_deactivated"
    HOUSEHOLD_ERASED = "household_erased"


# --- tables --------------------------------------------------------------------------------


class Site(SQLModel, table=True):
    """A registration site (reference data owned by registration)."""

    __tablename__ = "registration_site"

    id: str = TableField(primary_key=True)
    name: str
    country: str
    admin1: str
    admin2: str | None = None
    timezone: str
    created_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))


class Household(SQLModel, table=True):
    """A household; once erased, only its id, case number, site and status remain."""

    __tablename__ = "household"

    id: UUID = TableField(primary_key=True)
    case_number: str = TableField(unique=True)
    site_id: str = TableField(foreign_key="registration_site.id")
    admin1: str | None = None
    admin2: str | None = None
    settlement: str | None = None
    displacement_status: str | None = None
    arrival_date: date | None = None
    preferred_language: str | None = None
    phone: str | None = None
    consent_data_processing: bool | None = None
    consent_referral_sharing: bool | None = None
    consent_contact: bool | None = None
    consent_given_at: datetime | None = TableField(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )
    needs: list[dict[str, str]] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.JSONB, nullable=False)
    )
    status: str
    version: int = 1
    registered_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))
    merged_into_id: UUID | None = TableField(default=None, foreign_key="household.id")
    deactivation_reason: str | None = None
    erased_at: datetime | None = TableField(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )


class Member(SQLModel, table=True):
    """A person in a household, with the comparison and blocking keys of the duplicate check."""

    __tablename__ = "household_member"

    id: UUID = TableField(primary_key=True)
    household_id: UUID = TableField(foreign_key="household.id", ondelete="CASCADE")
    position: int
    given_name: str
    family_name: str | None = None
    sex: str
    date_of_birth: date | None = None
    estimated_age: int | None = None
    estimated_on: date | None = None
    relationship: str
    nationality: str
    vulnerabilities: list[str] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.ARRAY(sa.Text), nullable=False)
    )
    given_key: str
    family_key: str
    given_phonetic: str
    family_phonetic: str
    family_initial: str
    birth_year: int
    name_key: str


class MemberDocument(SQLModel, table=True):
    __tablename__ = "member_document"

    id: UUID = TableField(primary_key=True)
    member_id: UUID = TableField(foreign_key="household_member.id", ondelete="CASCADE")
    household_id: UUID = TableField(foreign_key="household.id", ondelete="CASCADE")
    doc_type: str
    number: str
    number_key: str
    issuing_country: str


class DuplicateReview(SQLModel, table=True):
    """A household waiting for someone to say whether it is a duplicate (one open per household)."""

    __tablename__ = "duplicate_review"

    id: UUID = TableField(primary_key=True)
    household_id: UUID = TableField(foreign_key="household.id")
    site_id: str
    status: str
    score: float
    reasons: list[str] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.ARRAY(sa.Text), nullable=False)
    )
    candidates: list[dict[str, Any]] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.JSONB, nullable=False)
    )
    created_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))
    resolved_at: datetime | None = TableField(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )
    resolved_by: str | None = None
    resolution: str | None = None
    merge_into_id: UUID | None = None


class IdempotencyRecord(SQLModel, table=True):
    """The first response to an (caller, Idempotency-Key) pair, replayed to re-sent requests."""

    __tablename__ = "registration_idempotency"

    principal_sub: str = TableField(primary_key=True)
    idempotency_key: str = TableField(primary_key=True)
    request_hash: str | None = None
    status_code: int | None = None
    response_body: dict[str, Any] | None = TableField(
        default=None, sa_column=sa.Column(postgresql.JSONB, nullable=True)
    )
    household_id: UUID | None = None
    created_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))


# --- validated value types -----------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@cache
def _alpha3_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.countries) | ICAO_SPECIAL_NATIONALITIES


@cache
def _alpha2_languages() -> frozenset[str]:
    return frozenset(lang.alpha_2 for lang in pycountry.languages if getattr(lang, "alpha_2", None))


def _country_code(value: str) -> str:
    if value not in _alpha3_codes():
        raise ValueError(
            "must be an ISO 3166-1 alpha-3 country code such as MDA or UKR "
            "(XXA stateless, XXX unknown)"
        )
    return value


def _country(value: str) -> str:
    if value not in _alpha3_codes() - ICAO_SPECIAL_NATIONALITIES:
        raise ValueError("must be an ISO 3166-1 alpha-3 country code such as MDA")
    return value


def _language_code(value: str) -> str:
    if value not in _alpha2_languages():
        raise ValueError("must be a two-letter ISO 639-1 language code such as uk, ro or ar")
    return value


def _timezone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise ValueError("must be an IANA time zone such as Europe/Chisinau")
    return value


# Space, hyphen, full stop, apostrophes, and the zero-width (non-)joiners of Persian and Dari.
_NAME_PUNCTUATION = frozenset(" -.'\u2019\u02bc\u200c\u200d")


def _person_name(value: str) -> str:
    if not any(ch.isalpha() for ch in value):
        raise ValueError("must contain letters")
    for ch in value:
        if not (ch.isalpha() or ch in _NAME_PUNCTUATION or unicodedata.category(ch) == "Mn"):
            raise ValueError(
                "may contain only letters, spaces, hyphens, apostrophes and full stops"
            )
    return re.sub(r" {2,}", " ", value)


def _today_anywhere() -> date:
    """The latest date it is anywhere on Earth: no valid date lies after it."""
    return (datetime.now(UTC) + DATE_SKEW).date()


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > _today_anywhere():
        raise ValueError("must not be in the future")
    return value


CountryCode = Annotated[str, BeforeValidator(_upper), AfterValidator(_country_code)]
SiteCountry = Annotated[str, BeforeValidator(_upper), AfterValidator(_country)]
LanguageCode = Annotated[str, BeforeValidator(_lower), AfterValidator(_language_code)]
PCode = Annotated[str, BeforeValidator(_upper), Field(pattern=PCODE_PATTERN, max_length=15)]
SiteId = Annotated[str, BeforeValidator(_upper), Field(pattern=SITE_ID_PATTERN)]
PhoneNumber = Annotated[
    str,
    BeforeValidator(lambda v: re.sub(r"[ \-().]", "", v) if isinstance(v, str) else v),
    Field(pattern=E164_PATTERN, description="E.164, e.g. +37369123456"),
]
PersonName = Annotated[
    CleanText, Field(min_length=1, max_length=NAME_MAX_LENGTH), AfterValidator(_person_name)
]
PastDate = Annotated[date, AfterValidator(_not_in_future)]


# --- sites ---------------------------------------------------------------------------------


class SiteBase(BaseModel):
    id: str = Field(description="Site code, also the prefix of its case numbers: MDA-CHI.")
    name: str
    country: str = Field(description="ISO 3166-1 alpha-3.")
    admin1: str = Field(description="Admin level 1 p-code.")
    admin2: str | None = Field(None, description="Admin level 2 p-code.")
    timezone: str = Field(description="IANA time zone, e.g. Europe/Chisinau.")


class SiteCreate(StrictModel):
    id: SiteId
    name: CleanText = Field(min_length=1, max_length=200)
    country: SiteCountry
    admin1: PCode
    admin2: PCode | None = None
    timezone: Annotated[str, AfterValidator(_timezone)]


class SitePublic(SiteBase):
    pass


# --- households: requests ------------------------------------------------------------------


def _document_number(value: str) -> str:
    if len(document_number_key(value)) < DOCUMENT_NUMBER_MIN_CHARACTERS:
        raise ValueError("needs at least two letters or digits")
    return value


class DocumentIn(StrictModel):
    type: DocumentType
    number: Annotated[
        CleanText,
        Field(min_length=1, max_length=50, pattern=r"^[\w \-/.]+$"),
        AfterValidator(_document_number),
    ]
    issuing_country: CountryCode


class MemberFields(StrictModel):
    """Fields a member may have; `MemberCreate` and `MemberUpdate` decide which are required."""

    @field_validator("date_of_birth", check_fields=False)
    @classmethod
    def _plausible_birth_date(cls, value: date | None) -> date | None:
        if value is not None and value.year < _today_anywhere().year - MAX_AGE_YEARS:
            raise ValueError(f"gives an age over {MAX_AGE_YEARS} years")
        return value

    @field_validator("vulnerabilities", check_fields=False)
    @classmethod
    def _distinct_vulnerabilities(
        cls, value: list[Vulnerability] | None
    ) -> list[Vulnerability] | None:
        return None if value is None else sorted(set(value))

    @field_validator("documents", check_fields=False)
    @classmethod
    def _distinct_documents(cls, value: list[DocumentIn] | None) -> list[DocumentIn] | None:
        if value is not None:
            seen = {(d.type, d.issuing_country, document_number_key(d.number)) for d in value}
            if len(seen) != len(value):
                raise ValueError("lists the same document twice")
        return value


class MemberCreate(MemberFields):
    given_name: PersonName
    family_name: PersonName | None = Field(
        None, description="Leave out for people who have a single name."
    )
    sex: Sex
    date_of_birth: PastDate | None = None
    estimated_age: int | None = Field(None, ge=0, le=MAX_AGE_YEARS)
    relationship: Relationship
    nationality: CountryCode
    documents: list[DocumentIn] = Field(default_factory=list, max_length=MAX_DOCUMENTS)
    vulnerabilities: list[Vulnerability] = Field(
        default_factory=list, max_length=len(Vulnerability)
    )

    @pydantic_model_validator(mode="after")
    def _one_age(self) -> MemberCreate:
        if (self.date_of_birth is None) == (self.estimated_age is None):
            raise ValueError("give either date_of_birth or estimated_age (exactly one of them)")
        return self


class MemberUpdate(MemberFields):
    """Fields present replace the member's; `null` clears `family_name` only."""

    given_name: PersonName | None = None
    family_name: PersonName | None = None
    sex: Sex | None = None
    date_of_birth: PastDate | None = None
    estimated_age: int | None = Field(None, ge=0, le=MAX_AGE_YEARS)
    relationship: Relationship | None = None
    former_head_relationship: Relationship | None = Field(
        None,
        description="When this member becomes the head: the relationship the current head "
        "takes instead (there is always exactly one head).",
    )
    nationality: CountryCode | None = None
    documents: list[DocumentIn] | None = Field(None, max_length=MAX_DOCUMENTS)
    vulnerabilities: list[Vulnerability] | None = Field(None, max_length=len(Vulnerability))

    @pydantic_model_validator(mode="after")
    def _consistent(self) -> MemberUpdate:
        if self.date_of_birth is not None and self.estimated_age is not None:
            raise ValueError("give either date_of_birth or estimated_age, not both")
        for name in ("given_name", "sex", "relationship", "nationality"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed")
        if self.former_head_relationship == Relationship.HEAD:
            raise ValueError("former_head_relationship cannot be head")
        if self.former_head_relationship is not None and self.relationship != Relationship.HEAD:
            raise ValueError("former_head_relationship goes with relationship 'head'")
        return self


class LocationIn(StrictModel):
    admin1: PCode
    admin2: PCode | None = None
    settlement: CleanText | None = Field(None, min_length=1, max_length=200)


class ConsentIn(StrictModel):
    data_processing: bool = Field(description="Must be true: nobody is registered without it.")
    referral_sharing: bool = False
    contact: bool = False
    given_at: datetime | None = Field(
        None, description="When the consent was given (defaults to the time of the request)."
    )

    @field_validator("data_processing")
    @classmethod
    def _required(cls, value: bool) -> bool:
        if not value:
            raise ValueError("the person must agree to data processing before registration")
        return value

    @field_validator("given_at")
    @classmethod
    def _past(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2025-03-01T10:00:00+02:00")
        if value > datetime.now(UTC) + CONSENT_CLOCK_SKEW:
            raise ValueError("must not be in the future")
        return value


class ConsentUpdate(StrictModel):
    data_processing: bool | None = Field(
        None, description="Cannot be withdrawn here: withdrawal means erasure."
    )
    referral_sharing: bool | None = None
    contact: bool | None = None

    @field_validator("data_processing")
    @classmethod
    def _no_withdrawal(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError(
                "consent to data processing cannot be withdrawn by an update; "
                "ask an administrator to erase the household"
            )
        return value


class NeedIn(StrictModel):
    type: NeedType
    priority: Priority = Priority.NORMAL


def _distinct_needs(value: list[NeedIn]) -> list[NeedIn]:
    if len({need.type for need in value}) != len(value):
        raise ValueError("lists the same need twice")
    return value


NeedList = Annotated[list[NeedIn], Field(max_length=len(NeedType)), AfterValidator(_distinct_needs)]


def _one_head(members: list[MemberCreate]) -> list[MemberCreate]:
    heads = sum(1 for m in members if m.relationship == Relationship.HEAD)
    if heads != 1:
        raise ValueError(
            f"a household needs exactly one member with relationship 'head' (found {heads})"
        )
    return members


class HouseholdCreate(StrictModel):
    site_id: SiteId
    location: LocationIn
    displacement_status: DisplacementStatus
    arrival_date: PastDate | None = None
    preferred_language: LanguageCode
    phone: PhoneNumber | None = None
    consent: ConsentIn
    members: Annotated[
        list[MemberCreate],
        Field(min_length=1, max_length=MAX_MEMBERS),
        AfterValidator(_one_head),
    ]
    needs: NeedList = Field(default_factory=list)


class HouseholdUpdate(StrictModel):
    """Fields present replace the household's; `null` clears the optional ones."""

    location: LocationIn | None = None
    displacement_status: DisplacementStatus | None = None
    arrival_date: PastDate | None = None
    preferred_language: LanguageCode | None = None
    phone: PhoneNumber | None = None
    consent: ConsentUpdate | None = None

    @pydantic_model_validator(mode="after")
    def _required_stay(self) -> HouseholdUpdate:
        for name in ("location", "displacement_status", "preferred_language", "consent"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed")
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class NeedsUpdate(StrictModel):
    needs: NeedList


class DeactivateRequest(StrictModel):
    reason: DeactivationReason


class ResolveRequest(StrictModel):
    action: Literal["merge", "not_duplicate"]
    merge_into: UUID | None = Field(
        None, description="With `merge`: the household that stays (usually a candidate)."
    )

    @pydantic_model_validator(mode="after")
    def _merge_target(self) -> ResolveRequest:
        if self.action == "merge" and self.merge_into is None:
            raise ValueError("merge needs merge_into: the household to keep")
        if self.action == "not_duplicate" and self.merge_into is not None:
            raise ValueError("merge_into goes only with action 'merge'")
        return self


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
    household_id: UUID
    case_number: str
    site_id: str
    score: float
    reasons: list[str]


class RegistrationResult(BaseModel):
    id: UUID
    case_number: str
    status: HouseholdStatus
    possible_duplicates: list[PossibleDuplicate]


class DuplicateReviewPublic(BaseModel):
    id: UUID
    household_id: UUID
    case_number: str
    site_id: str
    status: ReviewStatus
    score: float
    reasons: list[str]
    candidates: list[PossibleDuplicate]
    created_at: datetime
    resolved_at: datetime | None
    resolution: ReviewResolution | None
    merge_into: UUID | None


class DuplicateReviewPage(BaseModel):
    items: list[DuplicateReviewPublic]
    next_cursor: str | None

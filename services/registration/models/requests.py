"""Request shapes of the registration service (``XCreate`` / ``XUpdate``): strict, unknown
fields are refused, text is NFC without control characters; with the validated value types."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal
from uuid import UUID

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, field_validator
from pydantic import model_validator as pydantic_model_validator

from services.registration.domain.names import document_number_key
from services.registration.models.tables import DeactivationReason, DocumentType, Relationship
from shared.validation import CleanText, StrictModel
from shared.vocabulary import DisplacementStatus, NeedType, Priority, Sex, Vulnerability

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


class SiteCreate(StrictModel):
    id: SiteId
    name: CleanText = Field(min_length=1, max_length=200)
    country: SiteCountry
    admin1: PCode
    admin2: PCode | None = None
    timezone: Annotated[str, AfterValidator(_timezone)]


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

"""Request shapes of the registration service (``XCreate`` / ``XUpdate``): strict, unknown
fields are refused, text is NFC without control characters; with the validated value types."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, ConfigDict, Field, field_validator
from pydantic import model_validator as pydantic_model_validator
from pydantic.json_schema import SkipJsonSchema

from services.registration.domain.names import document_number_key
from services.registration.models.fields import (
    CONSENT_CLOCK_SKEW,
    DOCUMENT_NUMBER_MIN_CHARACTERS,
    MAX_AGE_YEARS,
    MAX_DOCUMENTS,
    MAX_MEMBERS,
    CountryCode,
    IsoDateTime,
    LanguageCode,
    OneLine,
    PastDate,
    PCode,
    PersonName,
    PhoneNumber,
    SiteCountry,
    SiteId,
    TimeZone,
    _today_anywhere,
)
from services.registration.models.tables import DeactivationReason, DocumentType, Relationship
from shared.validation import CleanText, StrictModel
from shared.vocabulary import DisplacementStatus, NeedType, Priority, Sex, Vulnerability


class SiteCreate(StrictModel):
    id: SiteId
    name: OneLine = Field(min_length=1, max_length=200)
    country: SiteCountry
    admin1: PCode
    admin2: PCode | None = None
    timezone: TimeZone


# --- households: requests ------------------------------------------------------------------


def _document_number(value: str) -> str:
    if len(document_number_key(value)) < DOCUMENT_NUMBER_MIN_CHARACTERS:
        raise ValueError("needs at least two letters or digits")
    return value


# Letters, digits, spaces and - / . with at least two letters or digits (`_document_number`).
_DOCUMENT_CHARACTER = r"[\p{L}\p{N}_ ./-]"
_ALPHANUMERIC = r"[\p{L}\p{N}]"
DOCUMENT_NUMBER_PATTERN = (
    "^" + (_DOCUMENT_CHARACTER + "*" + _ALPHANUMERIC) * 2 + _DOCUMENT_CHARACTER + "*$"
)


class DocumentIn(StrictModel):
    type: DocumentType
    number: Annotated[
        CleanText,
        Field(
            min_length=1,
            max_length=50,
            pattern=r"^[\w \-/.]+$",
            json_schema_extra={"pattern": DOCUMENT_NUMBER_PATTERN},
        ),
        AfterValidator(_document_number),
    ]
    issuing_country: CountryCode


DOCUMENTS_DESCRIPTION = (
    "Each document once: numbers are compared as their letters and digits, upper case, "
    "Cyrillic look-alikes as Latin ('AB 123' and 'ab-123' are the same document)."
)


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


def _given(field: str, json_type: str) -> dict[str, Any]:
    """JSON Schema: `field` is present and not null."""
    return {"properties": {field: {"type": json_type}}, "required": [field]}


class MemberCreate(MemberFields):
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [_given("date_of_birth", "string"), _given("estimated_age", "integer")]
        }
    )

    given_name: PersonName
    family_name: PersonName | None = Field(
        None, description="Leave out for people who have a single name."
    )
    sex: Sex
    date_of_birth: PastDate | None = None
    estimated_age: int | None = Field(None, ge=0, le=MAX_AGE_YEARS)
    relationship: Relationship
    nationality: CountryCode
    documents: list[DocumentIn] = Field(
        default_factory=list,
        max_length=MAX_DOCUMENTS,
        description=DOCUMENTS_DESCRIPTION,
        json_schema_extra={"uniqueItems": True},
    )
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

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "allOf": [_given("date_of_birth", "string"), _given("estimated_age", "integer")]
            },
            "allOf": [
                {"properties": {"former_head_relationship": {"not": {"const": "head"}}}},
            ],
            "if": _given("former_head_relationship", "string"),
            "then": {
                "properties": {"relationship": {"const": Relationship.HEAD.value}},
                "required": ["relationship"],
            },
        }
    )

    given_name: PersonName | SkipJsonSchema[None] = None
    family_name: PersonName | None = None
    sex: Sex | SkipJsonSchema[None] = None
    date_of_birth: PastDate | None = None
    estimated_age: int | None = Field(None, ge=0, le=MAX_AGE_YEARS)
    relationship: Relationship | SkipJsonSchema[None] = None
    former_head_relationship: Relationship | None = Field(
        None,
        description="When this member becomes the head: the relationship the current head "
        "takes instead (there is always exactly one head).",
    )
    nationality: CountryCode | SkipJsonSchema[None] = None
    documents: list[DocumentIn] | None = Field(
        None,
        max_length=MAX_DOCUMENTS,
        description=DOCUMENTS_DESCRIPTION,
        json_schema_extra={"uniqueItems": True},
    )
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
    settlement: OneLine | None = Field(None, min_length=1, max_length=200)


class ConsentIn(StrictModel):
    data_processing: bool = Field(
        strict=True,
        description="Must be true: nobody is registered without it.",
        json_schema_extra={"const": True},
    )
    referral_sharing: bool = Field(False, strict=True)
    contact: bool = Field(False, strict=True)
    given_at: IsoDateTime | None = Field(
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
        None,
        strict=True,
        description="Cannot be withdrawn here: withdrawal means erasure.",
        json_schema_extra={"not": {"const": False}},
    )
    referral_sharing: bool | None = Field(None, strict=True)
    contact: bool | None = Field(None, strict=True)

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


def _at_most_once(field: str, values: Any, *, at_least: int = 0) -> dict[str, Any]:
    """JSON Schema for a list in which each of `values` is the `field` of at most one item."""
    return {
        "allOf": [
            {
                "contains": {"properties": {field: {"const": value}}, "required": [field]},
                "minContains": at_least,
                "maxContains": 1,
            }
            for value in values
        ]
    }


def _distinct_needs(value: list[NeedIn]) -> list[NeedIn]:
    if len({need.type for need in value}) != len(value):
        raise ValueError("lists the same need twice")
    return value


NeedList = Annotated[
    list[NeedIn],
    Field(
        max_length=len(NeedType),
        description="Each need type at most once.",
        json_schema_extra=_at_most_once("type", [need.value for need in NeedType]),
    ),
    AfterValidator(_distinct_needs),
]


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
        Field(
            min_length=1,
            max_length=MAX_MEMBERS,
            description="Exactly one member has relationship 'head'.",
            json_schema_extra=_at_most_once("relationship", [Relationship.HEAD.value], at_least=1),
        ),
        AfterValidator(_one_head),
    ]
    needs: NeedList = Field(default_factory=list)


class HouseholdUpdate(StrictModel):
    """Fields present replace the household's; `null` clears the optional ones."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    location: LocationIn | SkipJsonSchema[None] = None
    displacement_status: DisplacementStatus | SkipJsonSchema[None] = None
    arrival_date: PastDate | None = None
    preferred_language: LanguageCode | SkipJsonSchema[None] = None
    phone: PhoneNumber | None = None
    consent: ConsentUpdate | SkipJsonSchema[None] = None

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
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"action": {"const": "merge"}}},
            "then": {
                "properties": {"merge_into": {"type": "string", "format": "uuid"}},
                "required": ["merge_into"],
            },
            "else": {"properties": {"merge_into": {"type": "null"}}},
        }
    )

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

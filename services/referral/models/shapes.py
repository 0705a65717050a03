"""The referral service's API shapes (XCreate / XUpdate / XPublic) and their value types."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.referral.domain.states import Action, Status
from services.referral.domain.vocabulary import (
    CancelReason,
    ConsentTaskStatus,
    DeclineReason,
    Origin,
    RevokeReason,
    ServiceType,
    Urgency,
)
from shared.validation import StrictModel, WholeNumber

PCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z0-9]{0,18}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
# Text fields state what they accept, as sent: pattern and length are checked before the
# surrounding spaces are trimmed (so the document's maxLength and the server count the same
# characters) and before any validator (after one, pydantic checks them but leaves them out of
# the JSON Schema). The patterns refuse what CleanText refuses (control characters, so tabs
# and line breaks) and require what must remain once trimmed; then the text is trimmed and
# put in Unicode NFC, as CleanText does.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_EDGE = rf"[^\s{_CONTROL}]"
_INNER = rf"[^{_CONTROL}]"
_ADDRESS_PART = rf"[^@\s{_CONTROL}]"
_TEXT = rf"{_EDGE}(?:{_INNER}*{_EDGE})?"
"""At least one visible character."""


def _line(pattern: str, *, min_length: int = 0, max_length: int) -> StringConstraints:
    """One line matching ``pattern``, possibly between spaces (which are trimmed)."""
    return StringConstraints(
        strip_whitespace=False,
        pattern=rf"^ *{pattern} *$",
        min_length=min_length or None,
        max_length=max_length,
    )


def _trim_nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value.strip())


_CLEAN = AfterValidator(_trim_nfc)
Name = Annotated[str, _line(_TEXT, min_length=1, max_length=200), _CLEAN]
City = Annotated[str, _line(_TEXT, min_length=1, max_length=100), _CLEAN]
Region = Annotated[str, _line(f"(?:{_TEXT})?", max_length=100), _CLEAN]
PostalCode = Annotated[str, _line(f"(?:{_TEXT})?", max_length=20), _CLEAN]
Reason = Annotated[str, _line(_TEXT, min_length=1, max_length=500), _CLEAN]
Note = Annotated[str, _line(f"(?:{_TEXT})?", max_length=500), _CLEAN]
Justification = Annotated[
    str, _line(rf"{_EDGE}{_INNER}+{_EDGE}", min_length=3, max_length=300), _CLEAN
]
"""At least three characters once trimmed."""
Phone = Annotated[str, _line(r"\+?[0-9][0-9 ()-]{1,29}[0-9()-]", max_length=40), _CLEAN]
Email = Annotated[
    str,
    _line(rf"{_ADDRESS_PART}+@{_ADDRESS_PART}+\.{_ADDRESS_PART}+", max_length=254),
    _CLEAN,
]
Website = Annotated[str, _line(rf"https?://{_EDGE}+", max_length=300), _CLEAN]
Capacity = Annotated[int, Ge(0), Le(100_000), *WholeNumber.__metadata__]
"""Open referral slots, a whole number (bounds first, so the document states them)."""
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class ProviderAddress(StrictModel):
    address_1: Name
    city: City
    state_province: Region | None = None
    postal_code: PostalCode | None = None
    country: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. MD.")

    def one_line(self) -> str:
        parts = [self.address_1, self.city, self.state_province, self.postal_code, self.country]
        return ", ".join(part for part in parts if part)


class ProviderContact(StrictModel):
    """The ORGANISATION's public contact details (never a staff member's)."""

    phone: Phone | None = None
    email: Email | None = None
    website: Website | None = None
    address: ProviderAddress | None = None


_UNIQUE: dict[str, Any] = {"uniqueItems": True}
"""A list's values must not repeat (``_refuse_repeats``), as the document states it."""


def _refuse_repeats(model: BaseModel) -> None:
    for name in ("services", "regions", "languages"):
        values = getattr(model, name)
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"{name} must not repeat a value")


class ProviderBase(StrictModel):
    name: Name
    services: list[ServiceType] = Field(
        min_length=1, max_length=len(ServiceType), json_schema_extra=_UNIQUE
    )
    regions: list[PCode] = Field(
        min_length=1,
        max_length=200,
        description="admin1 or admin2 p-codes served.",
        json_schema_extra=_UNIQUE,
    )
    languages: list[LanguageCode] = Field(
        default_factory=list,
        max_length=30,
        description="ISO 639-1 codes spoken.",
        json_schema_extra=_UNIQUE,
    )
    capacity: Capacity = Field(description="Open referral slots.")
    contact: ProviderContact = Field(default_factory=ProviderContact)
    opening_hours: Name = Field(examples=["Mon-Fri 09:00-17:00"])
    active: bool = Field(True, strict=True)

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        _refuse_repeats(self)
        return self


class ProviderCreate(ProviderBase):
    id: UUID | None = Field(None, description="Given when the id comes from another system.")


def _omitted_not_null(schema: dict[str, Any]) -> None:
    """The document of a patch whose fields may be left out but not set to null: each
    field's schema without its null branch and its null default."""
    for prop in schema.get("properties", {}).values():
        branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            prop.update(branches[0])
        elif branches:
            prop["anyOf"] = branches
        prop.pop("default", None)


class ProviderUpdate(StrictModel):
    """Only the fields given change; a required field cannot be set to null (the document
    allows no null, and an explicit null is refused)."""

    model_config = ConfigDict(json_schema_extra=_omitted_not_null)

    name: Name | None = None
    services: list[ServiceType] | None = Field(
        None, min_length=1, max_length=len(ServiceType), json_schema_extra=_UNIQUE
    )
    regions: list[PCode] | None = Field(
        None, min_length=1, max_length=200, json_schema_extra=_UNIQUE
    )
    languages: list[LanguageCode] | None = Field(None, max_length=30, json_schema_extra=_UNIQUE)
    capacity: Capacity | None = None
    contact: ProviderContact | None = None
    opening_hours: Name | None = None
    active: bool | None = Field(None, strict=True)

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        _refuse_repeats(self)
        return self


class ProviderPublic(ProviderBase):
    id: UUID
    open_referrals: int
    created_at: datetime
    updated_at: datetime


class ProviderPage(BaseModel):
    items: list[ProviderPublic]
    next_cursor: str | None


class HsdsImportResult(BaseModel):
    created: list[UUID]
    updated: list[UUID]
    skipped: list[dict[str, str]] = Field(
        description="Organisations and services Haven has no use for, with the reason."
    )


# --- API shapes: referrals -----------------------------------------------------------------


# The rule of ``_override_needs_reason``, as the document states it.
_OVERRIDE_RULE: dict[str, Any] = {
    "if": {"properties": {"consent_override": {"const": True}}, "required": ["consent_override"]},
    "then": {
        "properties": {"override_reason": {"type": "string"}},
        "required": ["override_reason"],
    },
    "else": {"properties": {"override_reason": {"type": "null"}}},
}


class ReferralCreate(StrictModel):
    """``override_reason`` is given with ``consent_override: true`` and only then."""

    model_config = ConfigDict(json_schema_extra=_OVERRIDE_RULE)

    household_id: UUID
    service_type: ServiceType
    urgency: Urgency = Urgency.NORMAL
    reason: Reason
    consent_override: bool = Field(False, strict=True)
    override_reason: Justification | None = Field(
        None,
        description="Required with consent_override: the justification (no personal data).",
    )

    @model_validator(mode="after")
    def _override_needs_reason(self) -> Self:
        if self.consent_override and not self.override_reason:
            raise ValueError("consent_override needs an override_reason")
        if self.override_reason and not self.consent_override:
            raise ValueError("override_reason is only for consent_override: true")
        return self


class DeclineRequest(StrictModel):
    reason_code: DeclineReason
    note: Note | None = None


class CancelRequest(StrictModel):
    reason_code: CancelReason = CancelReason.NO_LONGER_NEEDED
    note: Note | None = None


class RevokeRequest(StrictModel):
    reason_code: RevokeReason
    note: Note | None = None


class DeclineReceipt(BaseModel):
    """The decline is recorded; the referral has left the declining provider."""

    id: UUID
    status: Status
    reason_code: DeclineReason


class AssignRequest(StrictModel):
    provider_id: UUID


class HistoryEntryPublic(BaseModel):
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    actor: str
    provider_id: UUID | None
    reason_code: str | None
    note: str | None
    tier: int | None


class ReferralSummary(BaseModel):
    """A referral as caseworkers and managers see it."""

    id: UUID
    household_id: UUID
    site_id: str
    service_type: ServiceType
    urgency: Urgency
    sensitive: bool
    status: Status
    provider_id: UUID | None
    due_at: datetime | None
    overdue: bool
    escalation_tier: int
    origin: Origin
    reason: str | None
    consent_override: bool
    caseworker_sub: str | None
    created_at: datetime
    updated_at: datetime
    allowed_actions: list[Action]


class ReferralPublic(ReferralSummary):
    history: list[HistoryEntryPublic]


class ReferralPage(BaseModel):
    items: list[ReferralSummary]
    next_cursor: str | None


class ReferralCount(BaseModel):
    service_type: ServiceType
    status: Status
    count: int | None = Field(
        description="Referrals of this service type in this status; null when fewer than "
        "min_cell (but some): a small count can point at a person."
    )


class ReferralCounts(BaseModel):
    """Counts of every referral in the caller's sites, sensitive ones included."""

    min_cell: int
    items: list[ReferralCount]


class ProviderHistoryEntry(BaseModel):
    at: datetime
    action: str
    to_status: str


class HouseholdBrief(BaseModel):
    """Just enough for a provider to plan the service."""

    admin1: str | None
    admin2: str | None
    preferred_language: str | None
    household_size: int | None


class ProviderReferralView(BaseModel):
    """A referral as the provider it was sent to sees it: no reason, no other needs,
    no other providers, nothing about the household beyond what the service needs."""

    model_config = ConfigDict(title="ProviderReferral")

    id: UUID
    household_ref: str = Field(
        description="The household's pseudonym for this provider: the same on each of its "
        "referrals of that household, different for every other provider."
    )
    service_type: ServiceType
    urgency: Urgency
    status: Status
    provider_id: UUID | None
    due_at: datetime | None
    sent_at: datetime | None
    household: HouseholdBrief
    allowed_actions: list[Action]
    history: list[ProviderHistoryEntry]


class ProviderReferralPage(BaseModel):
    items: list[ProviderReferralView]
    next_cursor: str | None


class ConsentTaskPublic(BaseModel):
    id: UUID
    household_id: UUID
    site_id: str
    service_type: ServiceType
    status: ConsentTaskStatus
    created_at: datetime
    closed_at: datetime | None
    closed_reason: str | None


class ConsentTaskPage(BaseModel):
    items: list[ConsentTaskPublic]
    next_cursor: str | None

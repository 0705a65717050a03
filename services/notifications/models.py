"""Tables and API shapes of the notifications service (tables first, then API shapes)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import AfterValidator, ConfigDict, Field, GetJsonSchemaHandler
from pydantic import BaseModel as PydanticModel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from services.notifications.settings import Channel, StaffRole
from shared.validation import CleanText, StrictModel

metadata = SQLModel.metadata


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel class, for insert ... on conflict and bulk updates."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


class Status(StrEnum):
    """A notification's state. ``failed`` will be retried; ``dead`` will not (until an admin
    asks); ``skipped`` was never sent, for the reason in ``skip_reason``."""

    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEAD = "dead"


class Audience(StrEnum):
    BENEFICIARY = "beneficiary"
    STAFF = "staff"


class SkipReason(StrEnum):
    NO_CONTACT = "no_contact"  # no contact details arrived within the wait
    NO_CONSENT = "no_consent"  # the household did not agree to be contacted
    NO_PHONE = "no_phone"  # no phone number to send an SMS to
    CONTACT_WITHDRAWN = "contact_withdrawn"  # a tombstone removed the contact
    MERGED = "merged"  # the household was merged into another before sending


# --- read models fed by registration ------------------------------------------------------


class Contact(SQLModel, table=True):
    """A household's contact details, from the compacted contacts topic only."""

    __tablename__ = "notification_contact"

    household_id: UUID = Column(primary_key=True)
    case_number: str
    site_id: str
    phone: str | None = None
    language: str
    contact_consent: bool
    updated_at: datetime = Column(sa_type=sa.DateTime(timezone=True))


class HouseholdSite(SQLModel, table=True):
    """Where a household is registered, its case number, and whether registration says it
    agreed to be contacted (used only to refuse early, never to send)."""

    __tablename__ = "notification_household"

    household_id: UUID = Column(primary_key=True)
    site_id: str
    case_number: str
    contact_consent: bool
    version: int


class Erasure(SQLModel, table=True):
    """Households erased at their request: nothing about them is kept or sent again."""

    __tablename__ = "notification_erasure"

    household_id: UUID = Column(primary_key=True)
    erased_at: datetime = Column(sa_type=sa.DateTime(timezone=True))


# --- notifications ------------------------------------------------------------------------


class Notification(SQLModel, table=True):
    """One message to one recipient over one channel; unique per (event, recipient, channel)."""

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "recipient_key", "channel", name="notification_once"),
    )

    id: UUID = Column(primary_key=True)
    event_id: UUID
    event_type: str
    household_id: UUID | None = None
    site_id: str | None = None
    audience: str
    recipient_key: str
    channel: str
    address: str | None = None  # staff only; a beneficiary's phone is read when sending
    recipient_masked: str | None = None
    language: str | None = None
    context: dict[str, Any] = Column(sa_column=sa.Column(JSONB, nullable=False))
    subject: str | None = None
    body: str | None = None
    encoding: str | None = None
    segments: int | None = None
    status: str
    skip_reason: str | None = None
    attempts: int = 0
    next_attempt_at: datetime = Column(sa_type=sa.DateTime(timezone=True))
    contact_deadline: datetime | None = Column(default=None, sa_type=sa.DateTime(timezone=True))
    lease_until: datetime | None = Column(default=None, sa_type=sa.DateTime(timezone=True))
    lease_token: UUID | None = None
    last_error: str | None = None
    created_at: datetime = Column(sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Column(sa_type=sa.DateTime(timezone=True))
    delivered_at: datetime | None = Column(default=None, sa_type=sa.DateTime(timezone=True))


class Template(SQLModel, table=True):
    """A message template for one event type and language (Jinja2, sandboxed)."""

    __tablename__ = "notification_template"

    event_type: str = Column(primary_key=True)
    language: str = Column(primary_key=True)
    subject: str | None = None
    body: str
    updated_at: datetime = Column(sa_type=sa.DateTime(timezone=True))
    updated_by: str


class StaffRecipient(SQLModel, table=True):
    """The staff directory: who hears about what, by role and site."""

    __tablename__ = "notification_staff_recipient"

    id: UUID = Column(primary_key=True)
    role: str
    site_id: str  # "*" for every site
    channel: str
    address: str
    language: str
    provider_id: UUID | None = None
    staff_sub: str | None = None  # the person's token subject, for messages meant for them
    created_at: datetime = Column(sa_type=sa.DateTime(timezone=True))
    created_by: str


class RateBucket(SQLModel, table=True):
    """A channel's token bucket, shared by every sender replica."""

    __tablename__ = "notification_rate_bucket"

    channel: str = Column(primary_key=True)
    tokens: float
    refilled_at: datetime = Column(sa_type=sa.DateTime(timezone=True))


# --- API shapes ---------------------------------------------------------------------------

_LANGUAGE = re.compile(r"[a-z]{2}")
# Control characters other than line feed: templates are multi-line, but nothing else.
_TEMPLATE_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")

# What the documents say of request text, in patterns JSON Schema and Python's `re` read
# alike. The server trims surrounding white space (StrictModel) before it checks, so each
# pattern allows that white space around the value: the characters trimmed, Unicode's
# White_Space, some of which are control characters refused inside a value.
_WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TRIMMED = rf"[{_WHITE_SPACE}]"
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
# A character of a template, or a CR LF line break (read as LF); a lone CR is refused.
_TEMPLATE_CHAR = r"(?:[^\x00-\x09\x0b-\x1f\x7f-\x9f]|\r\n)"
TEMPLATE_TEXT_PATTERN = rf"^{TRIMMED}*{_TEMPLATE_CHAR}*{TRIMMED}*$"
# A template body has something other than white space.
TEMPLATE_BODY_PATTERN = (
    rf"^{TRIMMED}*{_TEMPLATE_CHAR}*[^{_WHITE_SPACE}{_CONTROLS}]{_TEMPLATE_CHAR}*{TRIMMED}*$"
)
ONE_LINE_PATTERN = rf"^{TRIMMED}*[^{_CONTROLS}]*{TRIMMED}*$"
# A staff e-mail address and webhook URL, as `recipients.check_address` reads them (trimmed).
_ADDRESS_CHAR = rf"[^@{_WHITE_SPACE}{_CONTROLS}]"
EMAIL_ADDRESS = rf"{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+\.{_ADDRESS_CHAR}+"
WEBHOOK_URL = rf"https?://[A-Za-z0-9.-]+(?::[0-9]{{1,5}})?(?:[/?#][^{_WHITE_SPACE}{_CONTROLS}]*)?"


class DocumentedPattern:
    """Annotated metadata putting ``pattern`` in a string's JSON Schema without checking it:
    the value's own validator checks the same rule (with its own, clearer message)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


def _template_text(value: str) -> str:
    value = value.replace("\r\n", "\n")
    if _TEMPLATE_CONTROLS.search(value):
        raise PydanticCustomError(
            "control_characters", "must not contain control characters other than line breaks"
        )
    return unicodedata.normalize("NFC", value)


TemplateText = Annotated[str, AfterValidator(_template_text)]
TemplateSubject = Annotated[
    TemplateText, Field(max_length=200), DocumentedPattern(TEMPLATE_TEXT_PATTERN)
]
TemplateBody = Annotated[
    TemplateText, Field(min_length=1, max_length=2000), DocumentedPattern(TEMPLATE_BODY_PATTERN)
]
OneLineText = Annotated[CleanText, DocumentedPattern(ONE_LINE_PATTERN)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1, lower case")]


class NotificationPublic(PydanticModel):
    """A notification as the API shows it: the recipient masked, never the message body."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    event_id: UUID
    event_type: str
    household_id: UUID | None = None
    site_id: str | None = None
    recipient: str | None
    channel: Channel
    language: str | None
    status: Status
    skip_reason: SkipReason | None = None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    encoding: str | None = None
    segments: int | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class NotificationPage(PydanticModel):
    items: list[NotificationPublic]
    next_cursor: str | None


class TemplateUpdate(StrictModel):
    subject: TemplateSubject | None = None
    body: TemplateBody


class TemplatePublic(PydanticModel):
    model_config = ConfigDict(from_attributes=True)

    event_type: str
    language: str
    audience: Audience
    subject: str | None
    body: str
    variables: list[str]
    updated_at: datetime
    updated_by: str


class TemplatePage(PydanticModel):
    items: list[TemplatePublic]
    next_cursor: str | None


def _staff_rules(schema: dict[str, Any]) -> None:
    """What `recipients.add_staff` checks beyond each field, said in the document: staff get
    e-mail or webhooks (SMS is for beneficiaries), the address suits the channel, and a
    provider contact names its provider."""
    schema["properties"]["channel"] = {
        "type": "string",
        "enum": [Channel.EMAIL.value, Channel.WEBHOOK.value],
        "description": "E-mail or webhook: SMS is for beneficiaries.",
    }
    schema["allOf"] = [
        {
            "if": {"required": ["channel"], "properties": {"channel": {"const": channel}}},
            "then": {"properties": {"address": {"pattern": f"^{TRIMMED}*{pattern}{TRIMMED}*$"}}},
        }
        for channel, pattern in (
            (Channel.EMAIL.value, EMAIL_ADDRESS),
            (Channel.WEBHOOK.value, WEBHOOK_URL),
        )
    ] + [
        {
            "if": {
                "required": ["role"],
                "properties": {"role": {"const": StaffRole.PROVIDER_CONTACT.value}},
            },
            "then": {
                "required": ["provider_id"],
                "properties": {"provider_id": {"type": "string", "format": "uuid"}},
            },
        }
    ]


class StaffRecipientCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra=_staff_rules)

    role: StaffRole
    site_id: CleanText = Field(
        min_length=1,
        max_length=32,
        pattern=r"^(\*|[A-Z0-9][A-Z0-9-]*)$",
        description='A site id such as "MDA-CHI", or "*" for every site.',
    )
    channel: Channel
    address: OneLineText = Field(
        min_length=3,
        max_length=500,
        description="An e-mail address (name@example.org) or an http(s) webhook URL with a "
        "host and no credentials.",
    )
    language: LanguageCode = "en"
    provider_id: UUID | None = Field(
        None, description="For provider_contact: the provider organisation it speaks for."
    )
    staff_sub: Annotated[OneLineText, Field(max_length=200)] | None = Field(
        None,
        description="The person's token subject: escalations naming this caseworker "
        "(ReferralEscalated.caseworker_sub) go to them rather than to the whole site.",
    )


class StaffRecipientPublic(PydanticModel):
    """A directory entry as the API shows it: the address masked, never whole."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    role: StaffRole
    site_id: str
    channel: Channel
    address: str = Field(
        description="Masked: a***@example.org, a phone's last two digits, or a webhook's "
        "scheme and host (https://hooks.example.org/…)."
    )
    language: str
    provider_id: UUID | None
    staff_sub: str | None
    created_at: datetime


def is_language_code(value: str) -> bool:
    return bool(_LANGUAGE.fullmatch(value))


class StaffRecipientPage(PydanticModel):
    items: list[StaffRecipientPublic]
    next_cursor: str | None

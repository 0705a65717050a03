"""Tables of the registration service (SQLModel, created by the hand-written migrations) and
the enumerations they store."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field as TableField
from sqlmodel import SQLModel

metadata = SQLModel.metadata


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
    # The token subject of the staff member who registered it (four eyes on its review).
    registered_by: str | None = None


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
    # Whose registration or new member opened it (may not decide it: four eyes).
    requested_by: str | None = None


class IdempotencyRecord(SQLModel, table=True):
    """The first outcome of a (caller, Idempotency-Key) pair, replayed to re-sent requests."""

    __tablename__ = "registration_idempotency"

    principal_sub: str = TableField(primary_key=True)
    idempotency_key: str = TableField(primary_key=True)
    request_hash: str | None = None
    outcome: str | None = None  # an OutcomeKind (shared/idempotency.py)
    response_body: dict[str, Any] | None = TableField(
        default=None, sa_column=sa.Column(postgresql.JSONB, nullable=True)
    )
    household_id: UUID | None = None
    created_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))

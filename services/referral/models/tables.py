"""The referral service's tables (SQLModel)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, SQLModel
from sqlmodel import Field as Col

from services.referral.domain.vocabulary import (
    ConsentTaskStatus,
)

metadata = SQLModel.metadata


def _timestamp(nullable: bool = False) -> Any:
    return Col(sa_column=Column(sa.DateTime(timezone=True), nullable=nullable))


def _texts() -> Any:
    return Col(sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False))


# --- tables --------------------------------------------------------------------------------


class Provider(SQLModel, table=True):
    """An organisation referrals are sent to."""

    __tablename__ = "provider"

    id: UUID = Col(primary_key=True)
    name: str
    services: list[str] = _texts()
    regions: list[str] = _texts()
    languages: list[str] = _texts()
    capacity: int
    contact: dict[str, Any] = Col(sa_column=Column(postgresql.JSONB, nullable=False))
    opening_hours: str
    active: bool = True
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Referral(SQLModel, table=True):
    """One referral of a household to a service type, and where it stands."""

    __tablename__ = "referral"

    id: UUID = Col(primary_key=True)
    household_id: UUID
    site_id: str
    service_type: str
    urgency: str
    sensitive: bool = False
    status: str
    provider_id: UUID | None = None
    origin: str
    reason: str | None = None
    consent_override: bool = False
    override_reason: str | None = None
    caseworker_sub: str | None = None
    tried_provider_ids: list[UUID] = Col(
        sa_column=Column(postgresql.ARRAY(sa.Uuid), nullable=False)
    )
    due_at: datetime | None = _timestamp(nullable=True)
    sent_at: datetime | None = _timestamp(nullable=True)
    overdue_at: datetime | None = _timestamp(nullable=True)
    escalation_tier: int = 0
    next_escalation_at: datetime | None = _timestamp(nullable=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    closed_at: datetime | None = _timestamp(nullable=True)


class ReferralHistory(SQLModel, table=True):
    """One step of a referral's path: who did what, when, to which provider."""

    __tablename__ = "referral_history"

    id: int | None = Col(default=None, primary_key=True)
    referral_id: UUID
    at: datetime = _timestamp()
    action: str
    from_status: str | None = None
    to_status: str
    actor: str
    provider_id: UUID | None = None
    reason_code: str | None = None
    note: str | None = None
    tier: int | None = None


class ConsentTask(SQLModel, table=True):
    """A caseworker's task: ask the household for referral-sharing consent."""

    __tablename__ = "consent_task"

    id: UUID = Col(primary_key=True)
    household_id: UUID
    site_id: str
    service_type: str
    status: str = ConsentTaskStatus.OPEN
    created_at: datetime = _timestamp()
    closed_at: datetime | None = _timestamp(nullable=True)
    closed_reason: str | None = None


class HouseholdView(SQLModel, table=True):
    """What the referral service knows of a household: registration's pseudonymous profile.

    A deactivated household keeps only its id, site, status and version.
    """

    __tablename__ = "referral_household"

    household_id: UUID = Col(primary_key=True)
    site_id: str
    status: str
    version: int
    referral_sharing: bool = False
    admin1: str | None = None
    admin2: str | None = None
    preferred_language: str | None = None
    household_size: int | None = None
    profile: dict[str, Any] | None = Col(
        default=None, sa_column=Column(postgresql.JSONB, nullable=True)
    )
    updated_at: datetime = _timestamp()


# --- API shapes: providers -----------------------------------------------------------------

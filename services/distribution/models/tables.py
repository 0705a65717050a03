"""The tables of the distribution service (constraints live in the migrations)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field as TableField
from sqlmodel import SQLModel

metadata = SQLModel.metadata

# --- tables --------------------------------------------------------------------------------


def _timestamp(nullable: bool = False) -> Any:
    return TableField(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable))


class Item(SQLModel, table=True):
    __tablename__ = "item"

    sku: str = TableField(primary_key=True)
    name: str
    category: str
    unit: str
    created_at: datetime = _timestamp()


class Warehouse(SQLModel, table=True):
    __tablename__ = "warehouse"

    id: UUID = TableField(primary_key=True)
    name: str
    site_id: str
    admin1: str
    admin2: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = _timestamp()


class ReorderLevel(SQLModel, table=True):
    __tablename__ = "reorder_level"

    warehouse_id: UUID = TableField(primary_key=True)
    sku: str = TableField(primary_key=True)
    level: int
    updated_at: datetime = _timestamp()


class StockBalance(SQLModel, table=True):
    """Derived quantity per warehouse x SKU x batch, kept in the ledger's transactions."""

    __tablename__ = "stock_balance"

    id: int | None = TableField(default=None, primary_key=True)
    warehouse_id: UUID
    sku: str
    batch: str | None = None
    expires_on: date | None = None
    quantity: int
    updated_at: datetime = _timestamp()


class StockReceipt(SQLModel, table=True):
    """A delivery note received at a warehouse (recorded once)."""

    __tablename__ = "stock_receipt"

    warehouse_id: UUID = TableField(primary_key=True, foreign_key="warehouse.id")
    reference: str = TableField(primary_key=True)
    recorded_by: str
    recorded_at: datetime = TableField(sa_type=sa.DateTime(timezone=True))


class StockLedgerEntry(SQLModel, table=True):
    """One append-only movement; quantities are signed (+ in, - out)."""

    __tablename__ = "stock_ledger"

    id: int | None = TableField(default=None, primary_key=True)
    warehouse_id: UUID
    sku: str
    batch: str | None = None
    expires_on: date | None = None
    kind: str
    quantity: int
    balance_after: int
    reason: str | None = None
    reference: str | None = None
    distribution_id: UUID | None = None
    line_no: int | None = None
    transfer_id: UUID | None = None
    recorded_by: str
    recorded_at: datetime = _timestamp()


class HouseholdView(SQLModel, table=True):
    """The pseudonymous household picture built from registration's events: only what the
    entitlement policy uses (size, needs, the vulnerabilities a rule names, status)."""

    __tablename__ = "household_view"

    household_id: UUID = TableField(primary_key=True)
    site_id: str
    household_size: int | None = None
    needs: list[str] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.ARRAY(sa.Text), nullable=False)
    )
    vulnerabilities: list[str] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.ARRAY(sa.Text), nullable=False)
    )
    status: str
    version: int
    merged_into: UUID | None = None
    updated_at: datetime = _timestamp()


class ErasedHousehold(SQLModel, table=True):
    """Only the id of an erased household, so a late profile event cannot bring it back."""

    __tablename__ = "household_erased"

    household_id: UUID = TableField(primary_key=True)
    erased_at: datetime = _timestamp()


class Prescription(SQLModel, table=True):
    """A referral or prescription reference recorded for a household (the prescription
    register): medication is given only against one of the household's own references."""

    __tablename__ = "prescription"

    reference: str = TableField(primary_key=True)
    household_id: UUID
    site_id: str
    recorded_by: str
    recorded_at: datetime = _timestamp()


class Distribution(SQLModel, table=True):
    __tablename__ = "distribution"

    id: UUID = TableField(primary_key=True)
    household_id: UUID | None = None
    warehouse_id: UUID
    site_id: str
    client_ref: str
    request_fingerprint: str | None = None
    response: dict[str, Any] | None = TableField(  # JSON keeps the key order of the original
        default=None, sa_column=sa.Column(postgresql.JSON, nullable=True)
    )
    status: str
    policy_version: str
    distributed_at: datetime = _timestamp()
    distributed_on: date
    recorded_by: str
    voided_at: datetime | None = _timestamp(nullable=True)
    voided_by: str | None = None
    void_reason: str | None = None


class DistributionLine(SQLModel, table=True):
    __tablename__ = "distribution_line"

    distribution_id: UUID = TableField(primary_key=True)
    line_no: int = TableField(primary_key=True)
    sku: str
    category: str
    quantity: int
    requested_batch: str | None = None
    prescription_reference: str | None = None


class Shelter(SQLModel, table=True):
    __tablename__ = "shelter"

    id: UUID = TableField(primary_key=True)
    name: str
    site_id: str
    capacity_beds: int
    floor_area_m2: Decimal
    beds_occupied: int = 0
    persons: int = 0
    created_at: datetime = _timestamp()


class ShelterAllocation(SQLModel, table=True):
    __tablename__ = "shelter_allocation"

    id: UUID = TableField(primary_key=True)
    shelter_id: UUID
    household_id: UUID | None = None
    beds: int
    persons: int
    check_in: date
    expected_check_out: date | None = None
    allocated_by: str
    allocated_at: datetime = _timestamp()
    released_at: datetime | None = _timestamp(nullable=True)
    released_by: str | None = None
    release_reason: str | None = None


class ExpiryRun(SQLModel, table=True):
    """One row per day the expiry write-off ran: the guard against writing off twice."""

    __tablename__ = "expiry_run"

    run_on: date = TableField(primary_key=True)
    started_at: datetime = _timestamp()
    batches_written_off: int = 0
    quantity_written_off: int = 0

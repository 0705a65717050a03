"""Tables and API shapes of the distribution service, side by side.

Tables are SQLModel classes (``table=True``) whose constraints live in the hand-written
migrations; request bodies subclass :class:`StrictModel` (unknown fields refused) and
responses are plain pydantic models named ``...Public``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, Field, model_validator
from sqlalchemy.dialects import postgresql
from sqlmodel import Field as TableField
from sqlmodel import SQLModel

from shared.validation import CleanText, StrictModel
from shared.vocabulary import NeedType

metadata = SQLModel.metadata

# --- bounds on input -----------------------------------------------------------------------

MAX_RECEIPT_QUANTITY = 1_000_000
"""Largest quantity of one receipt, transfer or adjustment line."""
MAX_LINE_QUANTITY = 10_000
"""Largest quantity of one distribution line."""
MAX_LINES = 100
"""Most lines in one receipt, transfer, adjustment or distribution."""
MAX_BEDS = 1_000
MAX_FLOOR_AREA_M2 = Decimal("1000000")

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
PCODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
BATCH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,63}$"
CLIENT_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_only(value: Any) -> Any:
    """Dates are ISO 8601 calendar dates (``2025-03-31``): no timestamps, no numbers."""
    if isinstance(value, date | datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD)")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
Sku = Annotated[str, Field(pattern=SKU_PATTERN, examples=["FOOD-PARCEL-15KG"])]
SiteId = Annotated[str, Field(pattern=SITE_PATTERN, examples=["MDA-CHI"])]
Batch = Annotated[str, Field(pattern=BATCH_PATTERN, examples=["LOT-2025-07"])]
Quantity = Annotated[int, Field(strict=True, gt=0, le=MAX_RECEIPT_QUANTITY)]
LineQuantity = Annotated[int, Field(strict=True, gt=0, le=MAX_LINE_QUANTITY)]
Reference = Annotated[CleanText, Field(min_length=1, max_length=120)]


# --- vocabularies --------------------------------------------------------------------------


class ItemCategory(StrEnum):
    FOOD = "food"
    HYGIENE = "hygiene"
    NON_FOOD_ITEM = "non_food_item"
    SHELTER_MATERIAL = "shelter_material"
    MEDICATION = "medication"


class LedgerKind(StrEnum):
    RECEIPT = "receipt"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    ADJUSTMENT = "adjustment"
    ISSUE = "issue"
    VOID_REVERSAL = "void_reversal"
    EXPIRY_WRITE_OFF = "expiry_write_off"


class AdjustmentReason(StrEnum):
    COUNT_CORRECTION = "count_correction"
    DAMAGED = "damaged"
    LOST = "lost"
    STOLEN = "stolen"
    FOUND = "found"
    RETURNED = "returned"
    QUALITY_RECALL = "quality_recall"


class DistributionStatus(StrEnum):
    RECORDED = "recorded"
    VOIDED = "voided"


class VoidReason(StrEnum):
    RECORDED_IN_ERROR = "recorded_in_error"
    WRONG_HOUSEHOLD = "wrong_household"
    WRONG_QUANTITY = "wrong_quantity"
    ITEMS_RETURNED = "items_returned"
    DUPLICATE = "duplicate"


class CheckOutReason(StrEnum):
    CHECKED_OUT = "checked_out"
    MOVED = "moved"
    LEFT_WITHOUT_NOTICE = "left_without_notice"


class ReleaseReason(StrEnum):
    """Why beds were freed: an operator's check-out reason, or the household's erasure."""

    CHECKED_OUT = "checked_out"
    MOVED = "moved"
    LEFT_WITHOUT_NOTICE = "left_without_notice"
    HOUSEHOLD_ERASED = "household_erased"


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
    """The pseudonymous household picture built from registration's events."""

    __tablename__ = "household_view"

    household_id: UUID = TableField(primary_key=True)
    site_id: str
    household_size: int | None = None
    members: list[dict[str, Any]] = TableField(
        default_factory=list, sa_column=sa.Column(postgresql.JSONB, nullable=False)
    )
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


# --- API shapes: catalogue -----------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ItemCreate(StrictModel):
    sku: Sku
    name: CleanText = Field(min_length=1, max_length=200)
    category: ItemCategory
    unit: CleanText = Field(min_length=1, max_length=40, examples=["parcel", "kit", "box"])


class ItemPublic(BaseModel):
    sku: str
    name: str
    category: ItemCategory
    unit: str


class LocationIn(StrictModel):
    admin1: CleanText = Field(pattern=PCODE_PATTERN, examples=["MD01"])
    admin2: CleanText | None = Field(default=None, pattern=PCODE_PATTERN)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class WarehouseCreate(StrictModel):
    id: UUID | None = Field(default=None, description="Optional; generated when absent.")
    name: CleanText = Field(min_length=1, max_length=200)
    site_id: SiteId
    location: LocationIn


class WarehousePublic(BaseModel):
    id: UUID
    name: str
    site_id: str
    location: LocationIn


class ReorderLevelSet(StrictModel):
    reorder_level: int = Field(strict=True, ge=0, le=MAX_RECEIPT_QUANTITY)


class ReorderLevelPublic(BaseModel):
    warehouse_id: UUID
    sku: str
    reorder_level: int


# --- API shapes: stock ---------------------------------------------------------------------


class ReceiptLine(StrictModel):
    sku: Sku
    quantity: Quantity
    batch: Batch | None = None
    expires_on: IsoDate | None = None


class ReceiptCreate(StrictModel):
    lines: list[ReceiptLine] = Field(min_length=1, max_length=MAX_LINES)
    reference: Reference = Field(description="Waybill or goods received note number.")


class StockLine(StrictModel):
    """A quantity of one SKU, optionally from a named batch (else first-expiry-first-out)."""

    sku: Sku
    quantity: Quantity
    batch: Batch | None = None


class TransferCreate(StrictModel):
    from_warehouse_id: UUID
    to_warehouse_id: UUID
    lines: list[StockLine] = Field(min_length=1, max_length=MAX_LINES)
    reference: Reference

    @model_validator(mode="after")
    def _two_warehouses(self) -> TransferCreate:
        if self.from_warehouse_id == self.to_warehouse_id:
            raise ValueError("a transfer needs two different warehouses")
        return self


class AdjustmentLine(StrictModel):
    sku: Sku
    batch: Batch | None = None
    quantity: int = Field(
        strict=True,
        ge=-MAX_RECEIPT_QUANTITY,
        le=MAX_RECEIPT_QUANTITY,
        description="Signed change: negative removes stock, positive adds it.",
    )
    reason: AdjustmentReason

    @model_validator(mode="after")
    def _not_zero(self) -> AdjustmentLine:
        if self.quantity == 0:
            raise ValueError("quantity must not be zero")
        return self


class AdjustmentCreate(StrictModel):
    lines: list[AdjustmentLine] = Field(min_length=1, max_length=MAX_LINES)
    reference: Reference | None = None


class MovementPublic(BaseModel):
    """A ledger entry as written by a command."""

    id: int
    warehouse_id: UUID
    sku: str
    batch: str | None
    expires_on: date | None
    kind: LedgerKind
    quantity: int
    balance_after: int
    reason: str | None
    reference: str | None
    distribution_id: UUID | None
    transfer_id: UUID | None
    recorded_by: str
    recorded_at: datetime


class MovementsPublic(BaseModel):
    movements: list[MovementPublic]
    transfer_id: UUID | None = None


class BatchStockPublic(BaseModel):
    batch: str | None
    expires_on: date | None
    quantity: int
    expired: bool


class ItemStockPublic(BaseModel):
    sku: str
    name: str
    category: ItemCategory
    unit: str
    on_hand: int = Field(description="Every batch, expired ones not yet written off included.")
    available: int = Field(description="What can be issued: unexpired batches only.")
    reorder_level: int | None
    below_reorder_level: bool
    issued_last_days: int = Field(description="Net quantity issued in the issue-rate window.")
    daily_issue_rate: float
    days_of_cover: float | None = Field(description="available / daily issue rate; null at 0.")
    batches: list[BatchStockPublic]


class WarehouseStockPublic(BaseModel):
    warehouse_id: UUID
    site_id: str
    as_of: date
    issue_rate_window_days: int
    items: list[ItemStockPublic]


# --- API shapes: distributions -------------------------------------------------------------


class DistributionLineCreate(StrictModel):
    sku: Sku
    quantity: LineQuantity
    batch: Batch | None = None
    prescription_reference: Reference | None = Field(
        default=None, description="Referral or prescription reference; required for medication."
    )


class DistributionCreate(StrictModel):
    household_id: UUID
    warehouse_id: UUID
    lines: list[DistributionLineCreate] = Field(min_length=1, max_length=MAX_LINES)
    client_ref: str = Field(
        pattern=CLIENT_REF_PATTERN,
        description="Unique across the service, chosen by the desk: re-sending the same request "
        "with it returns the original result.",
    )


class IssuedBatchPublic(BaseModel):
    batch: str | None
    expires_on: date | None
    quantity: int


class DistributionLinePublic(BaseModel):
    sku: str
    category: ItemCategory
    quantity: int
    batch: str | None
    prescription_reference: str | None
    issued: list[IssuedBatchPublic]


class DistributionPublic(BaseModel):
    id: UUID
    household_id: UUID | None
    warehouse_id: UUID
    site_id: str
    client_ref: str
    status: DistributionStatus
    policy_version: str
    distributed_at: datetime
    distributed_on: date
    recorded_by: str
    lines: list[DistributionLinePublic]
    voided_at: datetime | None = None
    void_reason: VoidReason | None = None


class VoidRequest(StrictModel):
    reason: VoidReason


# --- API shapes: entitlements --------------------------------------------------------------


class CategoryEntitlementPublic(BaseModel):
    category: ItemCategory
    basis: str
    allowed: int | None = Field(description="Units per window (or once); null: as prescribed.")
    window_days: int | None
    received: int = Field(description="Received within the window (ever, for once-only).")
    due: int | None = Field(description="What may be given now; null: as prescribed.")
    next_eligible_on: date | None = Field(
        description="Today when something is due; null when nothing more will be under this policy."
    )
    requires_reference: bool
    reason: str | None = Field(
        default=None, description="Why nothing is due, e.g. need_not_assessed."
    )


class ShelterEntitlementPublic(BaseModel):
    beds_allowed: int
    beds_allocated: int
    requires_need: NeedType | None


class EntitlementsPublic(BaseModel):
    household_id: UUID
    site_id: str
    status: str
    household_size: int | None
    as_of: date
    policy_version: str
    categories: list[CategoryEntitlementPublic]
    shelter: ShelterEntitlementPublic


# --- API shapes: shelter -------------------------------------------------------------------


class ShelterCreate(StrictModel):
    id: UUID | None = Field(default=None, description="Optional; generated when absent.")
    name: CleanText = Field(min_length=1, max_length=200)
    site_id: SiteId
    capacity_beds: int = Field(strict=True, gt=0, le=MAX_BEDS)
    floor_area_m2: Decimal = Field(gt=0, le=MAX_FLOOR_AREA_M2, decimal_places=2)


class ShelterPublic(BaseModel):
    id: UUID
    name: str
    site_id: str
    capacity_beds: int
    floor_area_m2: Decimal
    beds_occupied: int
    beds_free: int
    persons: int
    space_per_person_m2: Decimal | None
    below_minimum_space: bool = Field(
        description="True when covered floor area per person is under the minimum (3.5 m²)."
    )


class AllocationCreate(StrictModel):
    household_id: UUID
    beds: int = Field(strict=True, gt=0, le=MAX_BEDS)
    check_in: IsoDate
    expected_check_out: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AllocationCreate:
        if self.expected_check_out is not None and self.expected_check_out < self.check_in:
            raise ValueError("expected_check_out must not be before check_in")
        return self


class AllocationPublic(BaseModel):
    id: UUID
    shelter_id: UUID
    household_id: UUID | None
    beds: int
    persons: int
    check_in: date
    expected_check_out: date | None
    allocated_at: datetime
    released_at: datetime | None
    release_reason: ReleaseReason | None


class AllocationResult(BaseModel):
    allocation: AllocationPublic
    shelter: ShelterPublic
    warnings: list[str]


class CheckOutRequest(StrictModel):
    reason: CheckOutReason = CheckOutReason.CHECKED_OUT


# --- API shapes: reports -------------------------------------------------------------------


class ReportRow(BaseModel):
    day: date
    site_id: str
    category: ItemCategory
    distributions: int
    households: int
    quantity: int


class DistributionReport(BaseModel):
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    site_ids: list[str]
    rows: list[ReportRow]

"""API shapes of the distribution service: ``...Create`` bodies (unknown fields
refused) and ``...Public`` answers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from services.distribution.models.vocabulary import (
    CLIENT_REF_PATTERN,
    MAX_BEDS,
    MAX_LINES,
    MAX_RECEIPT_QUANTITY,
    AdjustmentReason,
    Batch,
    CheckOutReason,
    DistributionStatus,
    FloorArea,
    IsoDate,
    ItemCategory,
    LedgerKind,
    LineQuantity,
    PCode,
    Quantity,
    Reference,
    ReleaseReason,
    SiteId,
    Sku,
    Text,
    VoidReason,
)
from shared.validation import StrictModel, WholeNumber
from shared.vocabulary import NeedType

# --- API shapes: catalogue -----------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ItemCreate(StrictModel):
    sku: Sku
    name: Text = Field(min_length=1, max_length=200)
    category: ItemCategory
    unit: Text = Field(min_length=1, max_length=40, examples=["parcel", "kit", "box"])


class ItemPublic(BaseModel):
    sku: str
    name: str
    category: ItemCategory
    unit: str


class LocationIn(StrictModel):
    admin1: PCode
    admin2: PCode | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90, strict=True)
    longitude: float | None = Field(default=None, ge=-180, le=180, strict=True)


class WarehouseCreate(StrictModel):
    id: UUID | None = Field(default=None, description="Optional; generated when absent.")
    name: Text = Field(min_length=1, max_length=200)
    site_id: SiteId
    location: LocationIn


class WarehousePublic(BaseModel):
    id: UUID
    name: str
    site_id: str
    location: LocationIn


class ReorderLevelSet(StrictModel):
    reorder_level: WholeNumber = Field(ge=0, le=MAX_RECEIPT_QUANTITY)


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
    quantity: WholeNumber = Field(
        ge=-MAX_RECEIPT_QUANTITY,
        le=MAX_RECEIPT_QUANTITY,
        description="Signed change: negative removes stock, positive adds it; never zero.",
        json_schema_extra={"not": {"const": 0}},
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
    name: Text = Field(min_length=1, max_length=200)
    site_id: SiteId
    capacity_beds: WholeNumber = Field(gt=0, le=MAX_BEDS)
    floor_area_m2: FloorArea


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
    beds: WholeNumber = Field(gt=0, le=MAX_BEDS)
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


class PrescriptionCreate(StrictModel):
    reference: Reference = Field(
        description="The clinic's prescription or referral reference, as written on it; "
        "unique across the programme."
    )


class PrescriptionPublic(BaseModel):
    reference: str
    household_id: UUID
    recorded_at: datetime

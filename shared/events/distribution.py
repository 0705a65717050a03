"""Events of the distribution service (stock, distributions, shelter). No personal data."""

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventPayload


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DistributedLine(_Part):
    """One SKU x batch issued (a request line split across batches gives several lines)."""

    sku: str
    category: str
    quantity: int = Field(gt=0)
    batch: str | None = None


class DistributionRecorded(EventPayload):
    distribution_id: UUID
    household_id: UUID
    warehouse_id: UUID
    site_id: str
    lines: tuple[DistributedLine, ...]


class DistributionVoided(EventPayload):
    distribution_id: UUID
    household_id: UUID
    warehouse_id: UUID
    site_id: str
    reason_code: str


class ShelterAllocated(EventPayload):
    allocation_id: UUID
    household_id: UUID
    shelter_id: UUID
    site_id: str
    beds: int = Field(gt=0)
    check_in: date
    expected_check_out: date | None = None


class ShelterReleased(EventPayload):
    allocation_id: UUID
    household_id: UUID
    shelter_id: UUID
    site_id: str
    beds: int = Field(gt=0)
    reason_code: str | None = Field(
        default=None,
        description="checked_out, moved, left_without_notice, or household_erased (beds freed "
        "because registration erased the household: nobody to notify).",
    )


class StockLow(EventPayload):
    """A SKU's on-hand total in a warehouse crossed below its reorder level."""

    warehouse_id: UUID
    site_id: str
    sku: str
    category: str
    balance: int
    reorder_level: int
    days_of_cover: float | None = None


class StockExpired(EventPayload):
    """An expired batch written off (daily job, or a void returning goods of a batch that
    expired since)."""

    warehouse_id: UUID
    site_id: str
    sku: str
    category: str
    batch: str
    quantity: int
    expired_on: date

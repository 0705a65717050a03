"""What can go wrong, as values: each maps to one RFC 9457 problem type."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.idempotency import RequestKeyReused
from shared.problems import (
    Conflict,
    NotFound,
    NotInYourSites,
    ServiceUnavailable,
    UnprocessableContent,
)


class HouseholdNotKnownYet(NotFound):
    type_slug, title = "household-not-known-yet", "Household not known yet"

    def __init__(self, household_id: UUID, *, retry_after_seconds: int) -> None:
        super().__init__(
            f"No household {household_id} is known to distribution at your sites. If it was "
            "registered a moment ago, registration may not have reached distribution yet: "
            "retry shortly.",
            headers={"Retry-After": str(retry_after_seconds)},
            household_id=str(household_id),
        )


class HouseholdNotActive(Conflict):
    type_slug, title = "household-not-active", "Household not active"


class WarehouseNotFound(NotFound):
    type_slug, title = "warehouse-not-found", "Warehouse not found"

    def __init__(self, warehouse_id: UUID) -> None:
        super().__init__(f"Warehouse {warehouse_id} not found.", warehouse_id=str(warehouse_id))


class ShelterNotFound(NotFound):
    type_slug, title = "shelter-not-found", "Shelter not found"

    def __init__(self, shelter_id: UUID) -> None:
        super().__init__(f"Shelter {shelter_id} not found.", shelter_id=str(shelter_id))


class DistributionNotFound(NotFound):
    type_slug, title = "distribution-not-found", "Distribution not found"

    def __init__(self, distribution_id: UUID) -> None:
        super().__init__(
            f"Distribution {distribution_id} not found.", distribution_id=str(distribution_id)
        )


class AllocationNotFound(NotFound):
    type_slug, title = "allocation-not-found", "Shelter allocation not found"

    def __init__(self, allocation_id: UUID) -> None:
        super().__init__(
            f"Shelter allocation {allocation_id} not found.", allocation_id=str(allocation_id)
        )


# Out of scope: the resource exists at a site the caller's token does not cover. Answered
# exactly like the not-found problem above it, but audited as a refused request.


class HouseholdOutOfScope(HouseholdNotKnownYet, NotInYourSites):
    pass


class WarehouseOutOfScope(WarehouseNotFound, NotInYourSites):
    pass


class ShelterOutOfScope(ShelterNotFound, NotInYourSites):
    pass


class DistributionOutOfScope(DistributionNotFound, NotInYourSites):
    pass


class UnknownItems(UnprocessableContent):
    type_slug, title = "unknown-sku", "Unknown item"

    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"Unknown SKU: {', '.join(skus)}.", skus=skus)


class InvalidStockLines(Conflict):
    """Lines that are well-formed but break a rule of the catalogue or of the stock held
    (medication without a batch, a batch not held, one already expired; see ``errors``): a
    409, as they depend on data, not on the request's shape."""

    type_slug, title = "invalid-stock-lines", "Stock lines not acceptable"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        count = len(errors)
        detail = (
            "1 line cannot be accepted." if count == 1 else f"{count} lines cannot be accepted."
        )
        super().__init__(detail, errors=errors)


class AlreadyExists(Conflict):
    type_slug, title = "already-exists", "Already exists"


class ReceiptAlreadyRecorded(Conflict):
    type_slug = "receipt-already-recorded"
    title = "Receipt already recorded"


class BatchExpiryMismatch(Conflict):
    type_slug, title = "batch-expiry-mismatch", "Batch already known with another expiry date"


class InsufficientStock(Conflict):
    type_slug, title = "insufficient-stock", "Not enough stock"


class BatchExpired(Conflict):
    type_slug, title = "batch-expired", "Batch expired"


class EntitlementExceeded(Conflict):
    type_slug, title = "entitlement-exceeded", "Over entitlement"


class ReferenceRequired(UnprocessableContent):
    type_slug, title = "reference-required", "Referral or prescription reference required"


class ClientRefReused(RequestKeyReused):
    """The shared idempotency refusal, under the slug this API has always answered."""

    type_slug, title = "client-ref-reused", "client_ref already used for another request"


class AlreadyVoided(Conflict):
    type_slug, title = "already-voided", "Distribution already voided"


class DistributionAnonymised(Conflict):
    type_slug, title = "distribution-anonymised", "Distribution anonymised"


class ShelterFull(Conflict):
    type_slug, title = "shelter-full", "Not enough free beds"


class HouseholdAlreadySheltered(Conflict):
    type_slug, title = "household-already-sheltered", "Household already has beds"


class AlreadyReleased(Conflict):
    type_slug, title = "already-released", "Allocation already released"


class NoPolicyInForce(ServiceUnavailable):
    type_slug, title = "no-policy-in-force", "No entitlement policy in force"


class InvalidPeriod(UnprocessableContent):
    type_slug, title = "invalid-period", "Invalid period"


class SiteOutOfScope(NotInYourSites):
    """A site the caller's token does not cover (a report asked for it by id)."""

    def __init__(self, site_id: str) -> None:
        super().__init__(f"Site {site_id} not found among yours.", site_id=site_id)


class UnknownPrescription(UnprocessableContent):
    type_slug, title = "unknown-prescription-reference", "Prescription reference not recorded"


class PrescriptionOfAnotherHousehold(Conflict):
    type_slug, title = (
        "prescription-of-another-household",
        "Prescription reference recorded for another household",
    )


class PrescriptionReferenceTaken(Conflict):
    type_slug, title = (
        "prescription-reference-taken",
        "Prescription reference already recorded for another household",
    )

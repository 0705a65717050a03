"""What can go wrong in registration, as problem types (mapped to problem+json by shared.http)."""

from __future__ import annotations

from shared.idempotency import OutcomeGone, RequestKeyReused
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    NotInYourSites,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)


class SiteExists(Conflict):
    type_slug, title = "site-exists", "Site already exists"


class UnknownSite(ValidationFailed):
    """A household names a site that is not in the reference data."""

    def __init__(self, site_id: str) -> None:
        super().__init__(
            "1 field needs correcting.",
            errors=[
                {
                    "field": "site_id",
                    "message": f"there is no registration site {site_id}",
                    "type": "unknown_site",
                }
            ],
        )


class HouseholdNotFound(NotFound):
    type_slug, title = "household-not-found", "Household not found"


class HouseholdOutOfScope(HouseholdNotFound, NotInYourSites):
    """A household of a site the caller's token does not cover: answered as not found,
    audited as a refused request."""


class HouseholdErased(OutcomeGone):
    """An erased household (410), also the answer to a key whose registration was erased."""

    type_slug, title = "household-erased", "Household erased"


class MemberNotFound(NotFound):
    type_slug, title = "member-not-found", "Member not found"


class IfMatchRequired(PreconditionRequired):
    pass


class StaleVersion(PreconditionFailed):
    pass


class HouseholdNotEditable(Conflict):
    type_slug, title = "household-not-editable", "Household cannot be changed"


class IllegalTransition(Conflict):
    type_slug, title = "illegal-transition", "Not possible in the household's status"


class HeadRule(Conflict):
    type_slug, title = "household-head", "A household has exactly one head"


class IdempotencyKeyReused(RequestKeyReused):
    type_slug, title = "idempotency-key-reused", "Idempotency-Key already used"


class ReviewNotFound(NotFound):
    type_slug, title = "review-not-found", "Duplicate review not found"


class ReviewOutOfScope(ReviewNotFound, NotInYourSites):
    """A review of a site the caller's token does not cover (answered as not found, audited)."""


class ReviewNotOpen(Conflict):
    type_slug, title = "review-not-open", "Duplicate review already decided"


class InvalidMergeTarget(Conflict):
    type_slug, title = "invalid-merge-target", "Cannot merge into that household"


class OwnRegistration(Forbidden):
    """Four eyes: who registered a household of a review (or sent it to review) may not decide
    it (403, audited as a refusal)."""

    type_slug, title = "four-eyes", "Someone else must decide"


class InvalidParameter(ValidationFailed):
    """A query parameter the domain itself checks (a cursor, a date range)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            "1 field needs correcting.",
            errors=[{"field": field, "message": message, "type": "value_error"}],
        )


class SiteNotFound(NotFound):
    type_slug, title = "site-not-found", "Site not found"


class SiteOutOfScope(SiteNotFound, NotInYourSites):
    """A site the caller's token does not cover (answered as not found, audited as refused)."""

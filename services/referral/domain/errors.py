"""Every problem the referral service answers with (mapped to problem+json in one place)."""

from __future__ import annotations

from shared.problems import Conflict, NotFound, NotInYourSites, UnprocessableContent

# --- households ----------------------------------------------------------------------------


class HouseholdNotFound(NotFound):
    type_slug = "household-not-found"
    title = "Household not known here"


class HouseholdOutOfScope(NotInYourSites):
    """Answered exactly like HouseholdNotFound; audited as a refused request."""

    type_slug = HouseholdNotFound.type_slug
    title = HouseholdNotFound.title


class HouseholdInactive(Conflict):
    type_slug = "household-inactive"
    title = "Household is not active"


class ConcurrentFirstProfile(RuntimeError):
    """Another transaction inserted the household meanwhile; the event is retried (not a
    problem answered to anyone: the consumer retries the event)."""


# --- the provider directory ----------------------------------------------------------------


class ProviderNotFound(NotFound):
    type_slug = "provider-not-found"
    title = "Provider not in the directory"


class ProviderExists(Conflict):
    type_slug = "provider-exists"
    title = "Provider already in the directory"


class DuplicateOrganization(UnprocessableContent):
    type_slug = "duplicate-organization"
    title = "The document lists an organisation twice"


class TooManyOrganizations(UnprocessableContent):
    type_slug = "too-many-organizations"
    title = "Too many organisations in one import"


# --- referrals -----------------------------------------------------------------------------


class ReferralNotFound(NotFound):
    type_slug = "referral-not-found"
    title = "Referral not found"


class ReferralOutOfScope(NotInYourSites):
    """A referral of another site, or not with the caller's organisation: answered exactly
    like ReferralNotFound, audited as a refused request."""

    type_slug = ReferralNotFound.type_slug
    title = ReferralNotFound.title


class IllegalTransition(Conflict):
    type_slug = "illegal-transition"
    title = "This referral cannot do that now"


class ConsentRequired(Conflict):
    type_slug = "consent-required"
    title = "No consent to share with providers"


class DuplicateReferral(Conflict):
    type_slug = "duplicate-referral"
    title = "An open referral already exists"


class ProviderUnsuitable(Conflict):
    type_slug = "provider-unsuitable"
    title = "Provider cannot take this referral"

"""The household read model kept from registration's events, in the verbs every downstream
service uses (docs/architecture.md, "Household read models"): apply_profiles, deactivate,
merge, erase — and what commands need of a household."""

from services.distribution.domain.households.lifecycle import erase, merge
from services.distribution.domain.households.view import (
    HouseholdState,
    ProfileEvent,
    apply_profile,
    apply_profiles,
    deactivate,
    household_for_command,
    is_erased,
    lock_households,
    profile_row,
    require_active,
    visible_household,
)

__all__ = [
    "HouseholdState",
    "ProfileEvent",
    "apply_profile",
    "apply_profiles",
    "deactivate",
    "erase",
    "household_for_command",
    "is_erased",
    "lock_households",
    "merge",
    "profile_row",
    "require_active",
    "visible_household",
]

"""Registration's household events and what they do here.

* A profile event (registered, updated, needs assessed, vulnerabilities flagged) newer than
  the version held replaces the read model, then creates the automatic referrals its *new*
  needs call for — or, without referral-sharing consent, consent follow-up tasks. Withdrawing
  consent cancels the open referrals that relied on it.
* Deactivation cancels open referrals, closes consent tasks and removes the profile and the
  free text written about the household, keeping only its id, site, status and version.
* Erasure cancels open referrals (so providers and notifications hear of it), then deletes
  everything held about the household: referrals, their history, tasks and the read model.
* A merge moves everything of the merged household to the survivor; where both had an open
  referral of one service type, the further advanced one stays and the other is cancelled.
"""

from services.referral.domain.households.lifecycle import deactivate, erase
from services.referral.domain.households.merge import merge
from services.referral.domain.households.profiles import (
    ACTS_ON,
    Held,
    ProfileEvent,
    apply_profile,
    apply_profiles,
    take_profiles,
    view_row,
)

__all__ = [
    "ACTS_ON",
    "Held",
    "ProfileEvent",
    "apply_profile",
    "apply_profiles",
    "deactivate",
    "erase",
    "merge",
    "take_profiles",
    "view_row",
]

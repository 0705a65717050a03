"""Referrals: creating them, sending them, moving them through the state machine, reading them.

Every function that changes a referral changes its row first, then appends its history and
stages its events and audit record — all in the caller's one transaction. The modules:
``changes`` (row, history, event fields), ``sending`` (to a provider or the managers' queue),
``creation``, ``transitions``, ``access`` (who sees what), ``reading`` (views, pages) and
``counts`` (what managers see of referrals they may not read).
"""

from services.referral.domain.referrals.access import (
    load_for_provider,
    load_for_staff,
    may_see,
    provider_org,
    read,
    sees_as_provider,
    sees_every_sensitive,
    visible_sites,
)
from services.referral.domain.referrals.changes import (
    apply_action,
    event_fields,
    lock_household,
    open_referral,
    save,
)
from services.referral.domain.referrals.counts import counts
from services.referral.domain.referrals.creation import (
    Created,
    NewAutomatic,
    announce,
    create,
    create_automatic_together,
    create_manual,
)
from services.referral.domain.referrals.reading import (
    history_of,
    household_ref,
    is_overdue,
    page,
    provider_views,
    to_provider_view,
    to_public,
    to_summary,
)
from services.referral.domain.referrals.sending import reroute
from services.referral.domain.referrals.transitions import (
    accept,
    assign,
    cancel,
    close,
    close_open_for_household,
    complete,
    decline,
    revoke,
    start,
)

__all__ = [
    "Created",
    "NewAutomatic",
    "accept",
    "announce",
    "apply_action",
    "assign",
    "cancel",
    "close",
    "close_open_for_household",
    "complete",
    "counts",
    "create",
    "create_automatic_together",
    "create_manual",
    "decline",
    "event_fields",
    "history_of",
    "household_ref",
    "is_overdue",
    "load_for_provider",
    "load_for_staff",
    "lock_household",
    "may_see",
    "open_referral",
    "page",
    "provider_org",
    "provider_views",
    "read",
    "reroute",
    "revoke",
    "save",
    "sees_as_provider",
    "sees_every_sensitive",
    "start",
    "to_provider_view",
    "to_public",
    "to_summary",
    "visible_sites",
]

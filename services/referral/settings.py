"""The referral service's own settings (``HAVEN_REFERRAL_*``), with their defaults.

Deadline policies are JSON in the environment, e.g.::

    HAVEN_REFERRAL_SERVICE_POLICIES='{"legal": {"reroute_on_deadline": true}}'
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from services.referral.domain.vocabulary import ServiceType, Urgency
from shared.service import current_settings
from shared.settings import ServiceSettings

EscalationHours = tuple[float, float, float]


class DeadlinePolicy(BaseModel):
    """How long a provider has to accept, and what happens when it does not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urgent_deadline_hours: float = Field(
        24, gt=0, description="Hours an urgent referral may wait for acceptance."
    )
    deadline_hours: float = Field(
        72, gt=0, description="Hours any other referral may wait for acceptance."
    )
    escalation_after_hours: EscalationHours = Field(
        (0, 24, 48),
        description="Hours after the deadline at which tier 1 (reminder to the provider), "
        "tier 2 (supervising caseworker) and tier 3 (managers) are reached.",
    )
    urgent_escalation_after_hours: EscalationHours = Field(
        (0, 4, 8), description="The same for urgent referrals."
    )
    reroute_on_deadline: bool = Field(
        False,
        description="At the deadline, send the referral to the next provider (or the managers' "
        "queue) instead of escalating in tiers.",
    )

    @field_validator("escalation_after_hours", "urgent_escalation_after_hours")
    @classmethod
    def _increasing(cls, hours: EscalationHours) -> EscalationHours:
        if any(h < 0 for h in hours) or list(hours) != sorted(hours):
            raise ValueError("escalation hours must be non-negative and non-decreasing")
        return hours

    def deadline(self, urgency: Urgency) -> timedelta:
        hours = self.urgent_deadline_hours if urgency == Urgency.URGENT else self.deadline_hours
        return timedelta(hours=hours)

    def escalation_offsets(self, urgency: Urgency) -> tuple[timedelta, ...]:
        hours = (
            self.urgent_escalation_after_hours
            if urgency == Urgency.URGENT
            else self.escalation_after_hours
        )
        return tuple(timedelta(hours=h) for h in hours)


class ReferralSettings(ServiceSettings):
    """Knobs of the referral service; every one has a documented default."""

    default_policy: DeadlinePolicy = Field(
        default_factory=DeadlinePolicy,
        description="Deadline policy of service types without their own.",
    )
    service_policies: dict[ServiceType, DeadlinePolicy] = Field(
        default_factory=dict, description="Deadline policy per service type (JSON)."
    )
    scheduler_enabled: bool = Field(True, description="Run the deadline scheduler in-process.")
    scheduler_interval_seconds: float = Field(
        30.0, gt=0, description="Pause between two deadline checks."
    )
    scheduler_max_per_tick: int = Field(
        1000, ge=1, description="Most referrals one check escalates before pausing."
    )
    import_max_organizations: int = Field(
        500, ge=1, description="Most organisations one HSDS import may carry."
    )

    report_min_cell: int = Field(
        5, ge=1, description="Referral counts from 1 to this minus 1 are suppressed (null)."
    )
    household_pseudonym_key: SecretStr | None = Field(
        None,
        description="Key of the per-provider household pseudonyms providers see (HMAC). Unset: "
        "derived from this service's audit chain key, which production requires.",
    )

    def policy_for(self, service_type: str) -> DeadlinePolicy:
        return self.service_policies.get(ServiceType(service_type), self.default_policy)

    def pseudonym_key(self) -> bytes:
        """The key of providers' household pseudonyms: the one set, or one derived (HMAC with
        a label of its own) from the audit chain key, so it is secret wherever that is."""
        if self.household_pseudonym_key is not None:
            return self.household_pseudonym_key.get_secret_value().encode()
        label = b"haven:referral:household-pseudonym:v1"
        return hmac.new(self.chain_key("referral"), label, hashlib.sha256).digest()


SettingsDep = Annotated[ReferralSettings, Depends(current_settings)]
"""The service's settings in a route (tests replace ``current_settings``)."""

"""Settings of the registration service (``HAVEN_REGISTRATION_*``), with documented defaults."""

from typing import Annotated

from fastapi import Depends
from pydantic import Field

from shared.service import current_settings
from shared.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    """Knobs of registration; everything else comes from :class:`ServiceSettings`."""

    duplicate_threshold: float = Field(
        0.80,
        ge=0.0,
        le=1.0,
        description="Score at or above which a new household goes to duplicate review.",
    )
    dedup_candidates_per_member: int = Field(
        500,
        ge=10,
        description="Most registered people fetched per blocking look-up (bounds the check).",
    )
    idempotency_ttl_hours: int = Field(
        72, ge=1, description="How long an Idempotency-Key is remembered for re-sent requests."
    )
    idempotency_purge_seconds: float = Field(
        3600.0, gt=0, description="How often expired idempotency records are deleted."
    )
    report_min_cell: int = Field(
        5, ge=1, description="Counts below this are suppressed in aggregated reports."
    )


SettingsDep = Annotated[RegistrationSettings, Depends(current_settings)]
"""The service's typed settings in a route (tests replace ``current_settings``)."""

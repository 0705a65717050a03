"""The distribution service's own settings (``HAVEN_DISTRIBUTION_*``), with their defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends
from pydantic import Field

from shared.service import current_settings
from shared.settings import ServiceSettings

DEFAULT_POLICY_DIR = Path(__file__).resolve().parent / "policy"


class DistributionSettings(ServiceSettings):
    """Knobs of the distribution service; every one has a documented default."""

    policy_dir: Path = Field(
        DEFAULT_POLICY_DIR,
        description="Directory of the entitlement policy YAML files (one file per version).",
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone of the programme: it decides what 'today' is for "
        "entitlement windows, expiry and daily reports (e.g. Europe/Chisinau).",
    )
    household_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent when a household is not known here yet."
    )
    expiry_check_seconds: float = Field(
        60.0, gt=0, description="How often the expiry job looks whether today's run is due."
    )
    days_of_cover_window_days: int = Field(
        7, ge=1, description="Days of issues averaged to compute the daily issue rate."
    )
    min_space_per_person_m2: float = Field(
        3.5, gt=0, description="Shelters with less covered floor area per person are flagged."
    )
    report_max_days: int = Field(366, ge=1, description="Longest period a report may cover.")


SettingsDep = Annotated[DistributionSettings, Depends(current_settings)]
"""The service's typed settings in a route (tests replace ``current_settings``)."""

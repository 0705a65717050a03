"""Settings of the notifications service (``HAVEN_NOTIFICATIONS_*``), with documented defaults.

Nested values (dicts, lists) are given as JSON, e.g.
``HAVEN_NOTIFICATIONS_SITE_TIMEZONES='{"MDA-CHI": "Europe/Chisinau"}'``.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from shared.service import current_settings
from shared.settings import ServiceSettings

DEVELOPMENT_WEBHOOK_SECRET = "haven-DEVELOPMENT-ONLY-webhook-secret"  # noqa: S105


class Channel(StrEnum):
    """How a message travels. Beneficiaries get SMS; staff get e-mail or a webhook."""

    SMS = "sms"
    EMAIL = "email"
    WEBHOOK = "webhook"


class StaffRole(StrEnum):
    """Roles in the staff directory that alerts are addressed to."""

    WAREHOUSE_MANAGER = "warehouse_manager"
    FIELD_SUPERVISOR = "field_supervisor"
    PROVIDER_CONTACT = "provider_contact"
    CASEWORKER = "caseworker"
    MANAGER = "manager"


class TokenBucket(BaseModel):
    """A channel's rate limit: ``per_second`` sustained, ``burst`` at most at once."""

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class NotificationsSettings(ServiceSettings):
    """Knobs of the notifications service; every default is what ``make run`` uses."""

    # --- transports: "file" writes JSON lines locally (development); the others really send
    sms_transport: Literal["file", "gateway"] = "file"
    email_transport: Literal["file", "smtp"] = "file"
    webhook_transport: Literal["file", "http"] = "file"
    file_channel_path: str = Field(
        default_factory=lambda: str(
            Path(os.environ.get("HAVEN_STATE_DIR", ".haven")) / "notifications" / "messages.jsonl"
        ),
        description="Where the file transport appends one JSON line per message "
        "(default: $HAVEN_STATE_DIR, set by `make run`, else .haven/).",
    )

    # --- SMS gateway (RapidPro/Twilio-style JSON POST; operator configuration, trusted)
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    sms_gateway_timeout_seconds: float = Field(10.0, gt=0)
    sms_sender_id: str | None = Field(
        None, description="Sender id/short code, if the gateway needs one."
    )

    # --- SMTP (operator configuration, trusted)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = Field(False, description="Upgrade with STARTTLS after connecting.")
    smtp_implicit_tls: bool = Field(False, description="TLS from the first byte (port 465).")
    smtp_ca_file: str | None = Field(None, description="CA bundle to verify the server with.")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Haven <notifications@haven.localhost>"
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    message_id_domain: str = Field("haven.localhost", description="Right side of Message-IDs.")

    # --- webhooks (addresses come from the staff directory, so they are guarded against SSRF)
    webhook_secret: SecretStr = Field(
        SecretStr(DEVELOPMENT_WEBHOOK_SECRET),
        description="HMAC-SHA256 key for X-Haven-Signature; the default is for development.",
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Networks webhooks may reach although loopback/private/reserved "
        '(e.g. ["10.20.0.0/16"]); empty: only public addresses.',
    )

    # --- delivery
    max_attempts: int = Field(8, ge=1, description="Send attempts before a notification is dead.")
    backoff_initial_seconds: float = Field(30.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)
    sending_lease_seconds: float = Field(
        120.0, gt=0, description="How long a claimed notification is held before a new claim."
    )
    sender_enabled: bool = True
    sender_poll_seconds: float = Field(1.0, gt=0)
    sender_batch_size: int = Field(20, ge=1, le=1000)
    sender_gather_seconds: float = Field(
        0.05,
        ge=0,
        le=1,
        description="After a wake-up, wait this long before claiming, so messages queued by "
        "events arriving close together are sent in one round instead of a round each.",
    )
    sender_concurrency: int = Field(10, ge=1, le=200)
    rate_limits: dict[Channel, TokenBucket] = Field(
        default_factory=lambda: {
            Channel.SMS: TokenBucket(per_second=5, burst=20),
            Channel.EMAIL: TokenBucket(per_second=10, burst=50),
            Channel.WEBHOOK: TokenBucket(per_second=10, burst=50),
        },
        description="Token bucket per channel, shared by all replicas (kept in PostgreSQL).",
    )

    # --- beneficiaries
    contact_wait_seconds: float = Field(
        900.0,
        ge=0,
        description="How long a beneficiary message waits for the household's contact "
        "details before it is skipped with reason no_contact.",
    )
    fallback_language: str = "en"
    quiet_hours_enabled: bool = True
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    default_timezone: str = Field("UTC", description="Time zone of sites not listed below.")
    site_timezones: dict[str, str] = Field(
        default_factory=dict, description="site_id → IANA time zone, for quiet hours."
    )

    # --- staff alerts
    overdue_role: StaffRole = StaffRole.CASEWORKER
    escalation_audiences: dict[str, StaffRole] = Field(
        default_factory=lambda: {
            "provider": StaffRole.PROVIDER_CONTACT,
            "caseworker": StaffRole.CASEWORKER,
            "manager": StaffRole.MANAGER,
        },
        description="ReferralEscalated.audience → role told (used when the event names one).",
    )
    escalation_roles: dict[int, StaffRole] = Field(
        default_factory=lambda: {
            1: StaffRole.PROVIDER_CONTACT,
            2: StaffRole.CASEWORKER,
            3: StaffRole.MANAGER,
        },
        description="Escalation tier → role told when the event names no audience; tiers "
        "above the highest use its role.",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("site_timezones")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for zone in value.values():
            _zone(zone)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        longest = max(
            self.sms_gateway_timeout_seconds,
            self.smtp_timeout_seconds,
            self.webhook_timeout_seconds,
        )
        # A channel's claimed batch is sent in waves of `sender_concurrency`; the last wave
        # must end within the lease, or another sender could claim and send it again.
        waves = -(-self.sender_batch_size // self.sender_concurrency)
        if self.sending_lease_seconds <= waves * longest:
            raise ValueError(
                "sending_lease_seconds must exceed ceil(sender_batch_size / sender_concurrency) "
                "x the longest channel timeout, or a slow send could be claimed and sent again"
            )
        if self.sms_transport == "gateway" and not self.sms_gateway_url:
            raise ValueError("sms_transport=gateway needs sms_gateway_url")
        if not self.escalation_roles:
            raise ValueError("escalation_roles needs at least one tier")
        return self

    def production_warnings(self) -> list[str]:
        """Settings fit for a laptop but not for people waiting for messages."""
        warnings: list[str] = []
        if self.common.environment != "production":
            return warnings
        for channel, transport in (
            ("sms", self.sms_transport),
            ("email", self.email_transport),
            ("webhook", self.webhook_transport),
        ):
            if transport == "file":
                warnings.append(f"{channel} messages go to a local file, not to people")
        if self.webhook_secret.get_secret_value() == DEVELOPMENT_WEBHOOK_SECRET:
            warnings.append("webhooks are signed with the development secret")
        return warnings

    def rate_limit_for(self, channel: Channel) -> TokenBucket | None:
        """The channel's bucket; None for the file transport, which has no provider to spare."""
        transport = {
            Channel.SMS: self.sms_transport,
            Channel.EMAIL: self.email_transport,
            Channel.WEBHOOK: self.webhook_transport,
        }[channel]
        return None if transport == "file" else self.rate_limits.get(channel)

    def timezone_of(self, site_id: str | None) -> ZoneInfo:
        return _zone(self.site_timezones.get(site_id or "", self.default_timezone))

    def escalation_role(self, tier: int) -> StaffRole:
        eligible = [t for t in sorted(self.escalation_roles) if t <= tier]
        return self.escalation_roles[eligible[-1] if eligible else min(self.escalation_roles)]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


SettingsDep = Annotated[NotificationsSettings, Depends(current_settings)]
"""This service's settings in a route; tests replace ``current_settings``."""

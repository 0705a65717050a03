"""Settings: the defaults `make run` uses, JSON values from the environment, and refusals of
combinations that would break the delivery guarantees."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.notifications.channels.file import FileTransport
from services.notifications.channels.registry import build_transports
from services.notifications.channels.sms_gateway import SmsGatewayTransport
from services.notifications.settings import Channel, NotificationsSettings, StaffRole
from shared.settings import load_settings
from tests.support.clock import FakeClock


def test_defaults_write_every_channel_to_a_file_under_the_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HAVEN_STATE_DIR", "HAVEN_NOTIFICATIONS_FILE_CHANNEL_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert NotificationsSettings().file_channel_path == ".haven/notifications/messages.jsonl"
    monkeypatch.setenv("HAVEN_STATE_DIR", str(tmp_path))
    settings = load_settings("notifications", NotificationsSettings)
    assert settings.file_channel_path == str(tmp_path / "notifications" / "messages.jsonl")
    transports = build_transports(settings, clock=FakeClock())
    assert all(isinstance(t, FileTransport) for t in transports.values())
    assert settings.rate_limit_for(Channel.SMS) is None  # nothing to protect
    assert settings.quiet_hours_enabled


def test_json_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_SMS_TRANSPORT", "gateway")
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_SMS_GATEWAY_URL", "https://sms.example.org/send")
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_SITE_TIMEZONES", '{"MDA-CHI": "Europe/Chisinau"}')
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS", '["10.20.0.0/16"]')
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_RATE_LIMITS", '{"sms": {"per_second": 2, "burst": 4}}')
    monkeypatch.setenv("HAVEN_NOTIFICATIONS_ESCALATION_ROLES", '{"1": "caseworker"}')
    settings = load_settings("notifications", NotificationsSettings)
    assert settings.timezone_of("MDA-CHI").key == "Europe/Chisinau"
    assert settings.timezone_of("MDA-XXX").key == "UTC"
    assert settings.webhook_allowed_networks == [ipaddress.ip_network("10.20.0.0/16")]
    bucket = settings.rate_limit_for(Channel.SMS)
    assert bucket is not None and (bucket.per_second, bucket.burst) == (2, 4)
    assert settings.escalation_role(5) is StaffRole.CASEWORKER
    assert isinstance(
        build_transports(settings, clock=FakeClock())[Channel.SMS], SmsGatewayTransport
    )


def test_combinations_that_break_guarantees_are_refused() -> None:
    with pytest.raises(ValidationError, match="sending_lease_seconds"):
        NotificationsSettings(sending_lease_seconds=20, sms_gateway_timeout_seconds=30)
    with pytest.raises(ValidationError, match="sending_lease_seconds"):  # 4 waves x 30 s
        NotificationsSettings(sender_batch_size=40, sender_concurrency=10)
    with pytest.raises(ValidationError, match="sms_gateway_url"):
        NotificationsSettings(sms_transport="gateway")
    with pytest.raises(ValidationError, match="unknown time zone"):
        NotificationsSettings(site_timezones={"MDA-CHI": "Europe/Kishinev-ish"})


def test_escalation_tiers_above_the_highest_use_its_role() -> None:
    settings = NotificationsSettings()
    assert [settings.escalation_role(t) for t in (1, 2, 3, 7)] == [
        StaffRole.PROVIDER_CONTACT,
        StaffRole.CASEWORKER,
        StaffRole.MANAGER,
        StaffRole.MANAGER,
    ]


def test_production_is_warned_about_development_transports_and_secret() -> None:
    from shared.settings import CommonSettings

    laptop = NotificationsSettings()
    assert laptop.production_warnings() == []
    production = NotificationsSettings(common=CommonSettings(environment="production"))
    assert len(production.production_warnings()) == 4
    configured = NotificationsSettings(
        common=CommonSettings(environment="production"),
        sms_transport="gateway",
        sms_gateway_url="https://sms.example.org/send",
        email_transport="smtp",
        webhook_transport="http",
        webhook_secret="a-real-secret",
    )
    assert configured.production_warnings() == []

"""The transport behind each channel, chosen by settings (``*_transport``)."""

from __future__ import annotations

from services.notifications.channels.base import ChannelTransport
from services.notifications.channels.file import FileTransport
from services.notifications.channels.sms_gateway import SmsGatewayTransport
from services.notifications.channels.smtp import SmtpTransport
from services.notifications.channels.webhook import WebhookTransport
from services.notifications.settings import Channel, NotificationsSettings
from shared.clock import Clock


def build_transports(
    settings: NotificationsSettings, *, clock: Clock
) -> dict[Channel, ChannelTransport]:
    file = FileTransport(settings.file_channel_path, clock=clock)
    transports: dict[Channel, ChannelTransport] = {}
    if settings.sms_transport == "gateway":
        assert settings.sms_gateway_url is not None  # checked by the settings
        token = settings.sms_gateway_token
        transports[Channel.SMS] = SmsGatewayTransport(
            settings.sms_gateway_url,
            token=token.get_secret_value() if token else None,
            sender_id=settings.sms_sender_id,
            timeout_seconds=settings.sms_gateway_timeout_seconds,
        )
    else:
        transports[Channel.SMS] = file
    if settings.email_transport == "smtp":
        password = settings.smtp_password
        transports[Channel.EMAIL] = SmtpTransport(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            message_id_domain=settings.message_id_domain,
            clock=clock,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_implicit_tls,
            ca_file=settings.smtp_ca_file,
            username=settings.smtp_username,
            password=password.get_secret_value() if password else None,
            timeout_seconds=settings.smtp_timeout_seconds,
        )
    else:
        transports[Channel.EMAIL] = file
    if settings.webhook_transport == "http":
        transports[Channel.WEBHOOK] = WebhookTransport(
            secret=settings.webhook_secret.get_secret_value(),
            clock=clock,
            timeout_seconds=settings.webhook_timeout_seconds,
            allowed_networks=settings.webhook_allowed_networks,
        )
    else:
        transports[Channel.WEBHOOK] = file
    return transports

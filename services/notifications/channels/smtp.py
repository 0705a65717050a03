"""E-mail over SMTP (aiosmtplib), STARTTLS or implicit TLS when configured.

The notification id travels as the ``Message-ID`` (``<id@message_id_domain>``) and in
``X-Haven-Notification-Id``: SMTP servers do not deduplicate on it, but many mailboxes and
clients collapse messages with the same Message-ID. Replies 4xx and connection problems are
retried; 5xx replies are permanent.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from services.notifications.channels.base import (
    OutgoingMessage,
    PermanentChannelError,
    TransientChannelError,
)
from shared.clock import Clock

DEFAULT_SUBJECT = "Haven"


class SmtpTransport:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        message_id_domain: str,
        clock: Clock,
        starttls: bool = False,
        implicit_tls: bool = False,
        ca_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.message_id_domain = message_id_domain
        self.clock = clock
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.ca_file = ca_file
        self.username = username
        self.password = password
        self.timeout_seconds = timeout_seconds

    def build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.address
        email["Subject"] = message.subject or DEFAULT_SUBJECT
        email["Date"] = format_datetime(self.clock())
        email["Message-ID"] = f"<{message.idempotency_key}@{self.message_id_domain}>"
        email["X-Haven-Notification-Id"] = str(message.idempotency_key)
        email["X-Haven-Event-Type"] = message.event_type
        email["Content-Language"] = message.language
        email.set_content(message.body, charset="utf-8")
        return email

    async def send(self, message: OutgoingMessage) -> None:
        try:
            await aiosmtplib.send(
                self.build(message),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                start_tls=self.starttls,
                cert_bundle=self.ca_file,
                timeout=self.timeout_seconds,
            )
        except aiosmtplib.SMTPResponseException as exc:
            code = f"smtp_{exc.code}"
            if 400 <= exc.code < 500:
                raise TransientChannelError(code) from exc
            raise PermanentChannelError(code) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refused.code for refused in exc.recipients})
            code = "smtp_recipient_refused_" + "_".join(str(c) for c in codes)
            if codes and all(c >= 500 for c in codes):
                raise PermanentChannelError(code) from exc
            raise TransientChannelError(code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientChannelError(f"smtp_unreachable: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        return None

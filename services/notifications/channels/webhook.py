"""Signed webhooks for staff systems (chat bridges, ticketing, paging).

``POST`` of a JSON body ``{id, event_id, event_type, language, subject, text, site_id,
household_id}`` with headers:

* ``X-Haven-Timestamp``: Unix seconds when it was signed;
* ``X-Haven-Signature``: ``sha256=`` + hex HMAC-SHA256 over ``<timestamp>.<body bytes>`` with
  the shared ``webhook_secret`` (receivers recompute it and reject old timestamps);
* ``Idempotency-Key``: the notification id, the same on every attempt.

Redirects are never followed (a 3xx is a permanent failure), and targets are checked by
:mod:`.ssrf` after DNS resolution; the request goes to the checked address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

import httpx

from services.notifications.channels.base import (
    OutgoingMessage,
    PermanentChannelError,
    TransientChannelError,
    classify_http_status,
)
from services.notifications.channels.ssrf import IPNetwork, resolve_permitted
from shared.clock import Clock

SIGNATURE_HEADER = "X-Haven-Signature"
TIMESTAMP_HEADER = "X-Haven-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Haven-Signature value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookTransport:
    def __init__(
        self,
        *,
        secret: str,
        clock: Clock,
        timeout_seconds: float,
        allowed_networks: Sequence[IPNetwork] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.secret = secret.encode()
        self.clock = clock
        self.allowed_networks = list(allowed_networks)
        self.client = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, transport=transport
        )

    async def send(self, message: OutgoingMessage) -> None:
        try:
            url = httpx.URL(message.address)
        except httpx.InvalidURL as exc:
            raise PermanentChannelError("webhook_invalid_url") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise PermanentChannelError("webhook_invalid_url")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await resolve_permitted(url.host, port, self.allowed_networks)
        body = json.dumps(
            {
                "id": str(message.idempotency_key),
                "event_id": str(message.event_id),
                "event_type": message.event_type,
                "language": message.language,
                "subject": message.subject,
                "text": message.body,
                "site_id": message.site_id,
                "household_id": str(message.household_id) if message.household_id else None,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(self.clock().timestamp()))
        headers = {
            "Host": url.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": "Haven-Webhooks/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            IDEMPOTENCY_HEADER: str(message.idempotency_key),
        }
        # Connect to the address just checked; TLS still verifies the host name.
        pinned = url.copy_with(host=str(addresses[0]))
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        request = self.client.build_request(
            "POST", pinned, content=body, headers=headers, extensions=extensions
        )
        try:
            response = await self.client.send(request)
        except httpx.TimeoutException as exc:
            raise TransientChannelError("webhook_timeout") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"webhook_unreachable: {type(exc).__name__}") from exc
        error = classify_http_status(response.status_code)
        if error is not None:
            raise error

    async def aclose(self) -> None:
        await self.client.aclose()

"""SMS through an HTTP gateway: a RapidPro/Twilio-style JSON POST with an idempotency key.

Request: ``POST <sms_gateway_url>`` with ``{"to", "text", "reference", "from"?}``, headers
``Idempotency-Key: <notification id>`` and ``Authorization: Bearer <token>`` when set.
2xx: accepted. 408/425/429/5xx, timeouts and connection errors: retried. Other answers
(bad number, 3xx — redirects are not followed): permanent. The gateway URL is operator
configuration, so it may be an internal address.
"""

from __future__ import annotations

import httpx

from services.notifications.channels.base import (
    OutgoingMessage,
    TransientChannelError,
    classify_http_status,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"


class SmsGatewayTransport:
    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        sender_id: str | None,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.sender_id = sender_id
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(
            headers=headers,
            timeout=timeout_seconds,
            follow_redirects=False,
            transport=transport,
        )

    async def send(self, message: OutgoingMessage) -> None:
        payload: dict[str, str] = {
            "to": message.address,
            "text": message.body,
            "reference": str(message.idempotency_key),
        }
        if self.sender_id:
            payload["from"] = self.sender_id
        try:
            response = await self.client.post(
                self.url,
                json=payload,
                headers={IDEMPOTENCY_HEADER: str(message.idempotency_key)},
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError("gateway_timeout") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"gateway_unreachable: {type(exc).__name__}") from exc
        error = classify_http_status(response.status_code)
        if error is not None:
            raise error

    async def aclose(self) -> None:
        await self.client.aclose()

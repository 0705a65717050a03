"""The one small interface every channel transport implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message for one recipient. ``idempotency_key`` is the notification id:
    the same on every attempt, so a channel that honours it delivers at most once."""

    idempotency_key: UUID
    channel: str
    address: str
    subject: str | None
    body: str
    language: str
    event_id: UUID
    event_type: str
    household_id: UUID | None
    site_id: str | None


class ChannelError(Exception):
    """A send failed. ``code`` is short and free of personal data (it is stored and logged).
    ``permanent`` failures are not retried (e.g. a refused address, HTTP 400)."""

    permanent = False

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code[:300]


class TransientChannelError(ChannelError):
    permanent = False


class PermanentChannelError(ChannelError):
    permanent = True


class ChannelTransport(Protocol):
    """Delivers messages of one channel. ``send`` returns when the far end accepted the
    message and raises ChannelError otherwise; it must pass ``idempotency_key`` on."""

    async def send(self, message: OutgoingMessage) -> None: ...

    async def aclose(self) -> None: ...


def classify_http_status(status: int) -> ChannelError | None:
    """None for success; transient for 408/425/429/5xx; permanent for the rest (3xx: no
    redirects are followed)."""
    if 200 <= status < 300:
        return None
    if status in (408, 425, 429) or status >= 500:
        return TransientChannelError(f"http_{status}")
    if 300 <= status < 400:
        return PermanentChannelError(f"redirect_refused_http_{status}")
    return PermanentChannelError(f"http_{status}")

"""Recipients as the API shows them: enough to recognise, not enough to contact."""

from __future__ import annotations

from urllib.parse import urlsplit

from services.notifications.settings import Channel

PHONE_KEPT_START, PHONE_KEPT_END = 5, 2


def mask_phone(phone: str) -> str:
    """``+37360123412`` → ``+3736*****12``: country code and a digit, then the last two."""
    if len(phone) <= PHONE_KEPT_START + PHONE_KEPT_END:
        return "*" * max(len(phone) - PHONE_KEPT_END, 0) + phone[-PHONE_KEPT_END:]
    hidden = len(phone) - PHONE_KEPT_START - PHONE_KEPT_END
    return phone[:PHONE_KEPT_START] + "*" * hidden + phone[-PHONE_KEPT_END:]


def mask_email(address: str) -> str:
    """``ana.popescu@example.org`` → ``a***@example.org``."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def mask_url(url: str) -> str:
    """Scheme and host only: paths and queries of webhooks often carry secrets."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def mask(channel: Channel | str, address: str) -> str:
    if channel == Channel.SMS:
        return mask_phone(address)
    if channel == Channel.EMAIL:
        return mask_email(address)
    return mask_url(address)


def mask_phone_tail(phone: str) -> str:
    """``+37360123412`` → ``*********12``: the staff directory shows the last two digits only."""
    return "*" * max(len(phone) - PHONE_KEPT_END, 0) + phone[-PHONE_KEPT_END:]


def mask_listed(channel: Channel | str, address: str) -> str:
    """A staff directory address as the API shows it: ``a***@example.org``, a phone's last
    two digits, a webhook's scheme and host only (its path or query may hold a secret)."""
    if channel == Channel.SMS:
        return mask_phone_tail(address)
    return mask(channel, address)

"""Server-side request forgery guard for webhooks: resolve first, refuse internal targets.

Webhook addresses are typed in by people (the staff directory), so a webhook must not be
able to reach the service's own network: every address the host name resolves to is
checked, and if any is loopback, private, link-local, multicast, reserved, unspecified or
otherwise not globally routable (IPv4-mapped, 6to4 and Teredo IPv6 forms are unwrapped
first), the send is refused — unless that address is inside a network listed in
``webhook_allowed_networks``. The connection then goes to the checked address itself
(the host name is kept for the Host header and TLS), so a second DNS answer cannot
redirect it ("DNS rebinding").
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

from services.notifications.channels.base import PermanentChannelError, TransientChannelError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CHECKS = (  # most specific first, for the reason recorded
    "is_loopback",
    "is_link_local",
    "is_multicast",
    "is_unspecified",
    "is_reserved",
    "is_private",
)


class AddressRefused(PermanentChannelError):
    """The target resolves to an address webhooks may not reach."""


def refusal_reason(address: IPAddress) -> str | None:
    """Why webhooks may not reach ``address`` (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return refusal_reason(embedded)
        if address.teredo is not None:
            return refusal_reason(address.teredo[1])
        if address.is_site_local:
            return "site_local"
    for check in _CHECKS:
        if getattr(address, check):
            return check.removeprefix("is_")
    if not address.is_global:
        return "not_global"
    return None


def _allowed(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(c in n for c in candidates for n in networks if c.version == n.version)


async def resolve_permitted(
    host: str, port: int, allowed_networks: Sequence[IPNetwork]
) -> list[IPAddress]:
    """Every address of ``host``, or AddressRefused if any may not be reached."""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise TransientChannelError("webhook_dns_failed") from exc
        addresses = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
            resolved = ipaddress.ip_address(text)
            if resolved not in addresses:
                addresses.append(resolved)
    if not addresses:
        raise TransientChannelError("webhook_dns_failed")
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None and not _allowed(address, allowed_networks):
            raise AddressRefused(f"address_refused: {reason}")
    return addresses

"""Each channel against a real local peer: an SMTP server, an SMS gateway and a webhook
receiver over loopback (allowed explicitly), and the SSRF guard refusing internal targets."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from uuid import uuid4

import pytest

from services.notifications.channels.base import (
    OutgoingMessage,
    PermanentChannelError,
    TransientChannelError,
)
from services.notifications.channels.file import FileTransport
from services.notifications.channels.sms_gateway import SmsGatewayTransport
from services.notifications.channels.smtp import SmtpTransport
from services.notifications.channels.ssrf import AddressRefused, resolve_permitted
from services.notifications.channels.webhook import WebhookTransport
from tests.notifications.support import HttpReceiver, SmtpServer
from tests.support.clock import FakeClock

LOOPBACK = [__import__("ipaddress").ip_network("127.0.0.0/8")]
SECRET = "test-webhook-secret"


def message(
    address: str, *, body: str = "Номер справи: MDA-PAL-000123", subject: str | None = None
) -> OutgoingMessage:
    return OutgoingMessage(
        idempotency_key=uuid4(),
        channel="sms",
        address=address,
        subject=subject,
        body=body,
        language="uk",
        event_id=uuid4(),
        event_type="HouseholdRegistered",
        household_id=uuid4(),
        site_id="MDA-PAL",
    )


async def test_sms_gateway_gets_json_with_the_idempotency_key_and_token() -> None:
    gateway = await HttpReceiver().start()
    transport = SmsGatewayTransport(
        gateway.url + "/api/v2/sms", token="gw-token", sender_id="HAVEN", timeout_seconds=5
    )
    try:
        sms = message("+37360123412")
        await transport.send(sms)
        await transport.send(sms)  # a retry of the same notification
    finally:
        await transport.aclose()
        await gateway.stop()
    first, second = gateway.requests
    assert first.path == "/api/v2/sms"
    assert first.headers["idempotency-key"] == str(sms.idempotency_key)
    assert first.headers["authorization"] == "Bearer gw-token"
    assert json.loads(first.body) == {
        "to": "+37360123412",
        "text": "Номер справи: MDA-PAL-000123",
        "reference": str(sms.idempotency_key),
        "from": "HAVEN",
    }
    assert second.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert len(gateway.delivered) == 1  # the gateway honoured the key


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientChannelError),
        (429, TransientChannelError),
        (400, PermanentChannelError),
        (302, PermanentChannelError),
    ],
)
async def test_sms_gateway_answers_are_classified(status: int, error: type[Exception]) -> None:
    gateway = await HttpReceiver(statuses=[status]).start()
    transport = SmsGatewayTransport(gateway.url, token=None, sender_id=None, timeout_seconds=5)
    try:
        with pytest.raises(error) as info:
            await transport.send(message("+37360123412"))
    finally:
        await transport.aclose()
        await gateway.stop()
    assert str(status) in info.value.code  # type: ignore[attr-defined]
    assert len(gateway.requests) == 1  # a redirect is never followed


async def test_an_unreachable_gateway_is_a_transient_failure() -> None:
    gateway = await HttpReceiver().start()
    url = gateway.url
    await gateway.stop()
    transport = SmsGatewayTransport(url, token=None, sender_id=None, timeout_seconds=2)
    try:
        with pytest.raises(TransientChannelError):
            await transport.send(message("+37360123412"))
    finally:
        await transport.aclose()


async def test_email_over_a_real_smtp_server_carries_the_notification_id() -> None:
    clock = FakeClock()
    with SmtpServer() as server:
        transport = SmtpTransport(
            host="127.0.0.1",
            port=server.port,
            sender="Haven <notifications@haven.test>",
            message_id_domain="haven.test",
            clock=clock,
        )
        email = message(
            "warehouse.chi@example.org",
            subject="Низький залишок, MDA-CHI: HYG-KIT",
            body="Залишок HYG-KIT нижчий за рівень дозамовлення.",
        )
        await transport.send(email)
    (received,) = server.messages
    assert server.collector.recipients == [["warehouse.chi@example.org"]]
    assert received["Message-ID"] == f"<{email.idempotency_key}@haven.test>"
    assert received["X-Haven-Notification-Id"] == str(email.idempotency_key)
    assert received["Subject"] == "Низький залишок, MDA-CHI: HYG-KIT"
    assert received.get_content().strip() == "Залишок HYG-KIT нижчий за рівень дозамовлення."
    assert server.collector.tls == [False]


async def test_email_with_starttls_against_a_server_that_requires_it() -> None:
    with SmtpServer(starttls=True) as server:
        plain = SmtpTransport(
            host="localhost",
            port=server.port,
            sender="h@haven.test",
            message_id_domain="haven.test",
            clock=FakeClock(),
        )
        with pytest.raises(PermanentChannelError, match="smtp_530"):
            await plain.send(message("a@example.org", subject="s", body="b"))
        secure = SmtpTransport(
            host="localhost",
            port=server.port,
            sender="h@haven.test",
            message_id_domain="haven.test",
            clock=FakeClock(),
            starttls=True,
            ca_file=server.ca_file,
        )
        await secure.send(message("a@example.org", subject="Stoc scăzut", body="Vă rugăm"))
    (received,) = server.messages
    assert received["Subject"] == "Stoc scăzut"
    assert server.collector.tls == [True]


async def test_an_smtp_server_that_is_down_is_a_transient_failure() -> None:
    with SmtpServer() as server:
        port = server.port
    transport = SmtpTransport(
        host="127.0.0.1",
        port=port,
        sender="h@haven.test",
        message_id_domain="haven.test",
        clock=FakeClock(),
        timeout_seconds=2,
    )
    with pytest.raises(TransientChannelError, match="smtp_unreachable"):
        await transport.send(message("a@example.org", subject="s", body="b"))


async def test_webhooks_are_signed_over_timestamp_and_body() -> None:
    clock = FakeClock()
    receiver = await HttpReceiver().start()
    transport = WebhookTransport(
        secret=SECRET, clock=clock, timeout_seconds=5, allowed_networks=LOOPBACK
    )
    try:
        hook = message(receiver.url + "/hooks/haven?team=ops", subject="Stock low", body="12 left")
        await transport.send(hook)
    finally:
        await transport.aclose()
        await receiver.stop()
    (request,) = receiver.requests
    timestamp = request.headers["x-haven-timestamp"]
    assert timestamp == str(int(clock.now.timestamp()))
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    assert request.headers["x-haven-signature"] == "sha256=" + expected.hexdigest()
    assert request.headers["idempotency-key"] == str(hook.idempotency_key)
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    payload = json.loads(request.body)
    assert payload["id"] == str(hook.idempotency_key)
    assert (payload["subject"], payload["text"]) == ("Stock low", "12 left")


async def test_webhooks_do_not_follow_redirects() -> None:
    receiver = await HttpReceiver(statuses=[307]).start()
    transport = WebhookTransport(
        secret=SECRET, clock=FakeClock(), timeout_seconds=5, allowed_networks=LOOPBACK
    )
    try:
        with pytest.raises(PermanentChannelError, match="redirect_refused"):
            await transport.send(message(receiver.url + "/hook"))
    finally:
        await transport.aclose()
        await receiver.stop()
    assert len(receiver.requests) == 1


async def test_webhooks_to_loopback_or_private_targets_are_refused_by_default() -> None:
    receiver = await HttpReceiver().start()
    transport = WebhookTransport(secret=SECRET, clock=FakeClock(), timeout_seconds=5)
    try:
        for target, reason in [
            (receiver.url + "/hook", "loopback"),
            (f"http://localhost:{receiver.port}/hook", "loopback"),
            (f"http://[::ffff:127.0.0.1]:{receiver.port}/hook", "loopback"),
            ("http://10.1.2.3/hook", "private"),
            ("http://192.168.0.10/hook", "private"),
            ("http://169.254.169.254/latest/meta-data/", "link_local"),
            ("http://[fe80::1]/hook", "link_local"),
            ("http://224.0.0.1/hook", "multicast"),
            ("http://0.0.0.0:8004/hook", "unspecified"),
            ("http://240.0.0.1/hook", "reserved"),
            ("http://100.64.0.1/hook", "not_global"),
        ]:
            with pytest.raises(AddressRefused) as info:
                await transport.send(message(target))
            assert info.value.code == f"address_refused: {reason}", target
            assert info.value.permanent
    finally:
        await transport.aclose()
        await receiver.stop()
    assert receiver.requests == []  # nothing ever reached the internal service


async def test_allowed_networks_open_exactly_those_addresses() -> None:
    assert await resolve_permitted("127.0.0.1", 80, LOOPBACK)
    with pytest.raises(AddressRefused):
        await resolve_permitted("10.0.0.1", 80, LOOPBACK)
    public = await resolve_permitted("8.8.8.8", 443, [])
    assert [str(a) for a in public] == ["8.8.8.8"]


async def test_file_channel_writes_json_lines_once_per_key(tmp_path: Path) -> None:
    path = tmp_path / "out" / "messages.jsonl"
    transport = FileTransport(path, clock=FakeClock())
    sms = message("+37360123412")
    await transport.send(sms)
    await transport.send(sms)
    await FileTransport(path, clock=FakeClock()).send(sms)  # a restarted process too
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1
    assert lines[0]["idempotency_key"] == str(sms.idempotency_key)
    assert lines[0]["text"] == "Номер справи: MDA-PAL-000123"

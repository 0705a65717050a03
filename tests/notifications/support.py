"""Helpers for the notifications tests: events as the other services send them, a controlled
clock, a local HTTP receiver (SMS gateway / webhook) and a local SMTP server."""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import sqlalchemy as sa
import uvicorn
from aiokafka import ConsumerRecord
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.channels.base import ChannelError, OutgoingMessage
from services.notifications.settings import Channel, NotificationsSettings, TokenBucket
from shared.auth import Principal, Role
from shared.clock import Clock
from shared.db import asyncpg_dsn
from shared.events.distribution import (
    DistributedLine,
    DistributionRecorded,
    ShelterAllocated,
    StockLow,
)
from shared.events.envelope import Envelope, EventPayload
from shared.events.referral import (
    ReferralAccepted,
    ReferralEscalated,
    ReferralOverdue,
    ReferralSent,
)
from shared.events.registration import (
    ConsentFlags,
    DuplicateReviewRequested,
    HouseholdContact,
    HouseholdErased,
    HouseholdRegistered,
    Location,
)
from shared.settings import CommonSettings
from tests.support import consumer_record, unique
from tests.support.events import envelope, household_profile

# --- databases ------------------------------------------------------------------------------


async def clone(template_database: str) -> str:
    """A new database copied from the migrated template; the caller drops it."""
    name = unique("t_notif")
    template = make_url(template_database)
    await _as_admin(template_database, f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    return template.set(database=name).render_as_string(hide_password=False)


async def drop(url: str) -> None:
    await _as_admin(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


async def _as_admin(url: str, statement: str) -> None:
    """Run ``statement`` on the server of ``url``, connected to its postgres database."""
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(asyncpg_dsn(admin))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# --- time -----------------------------------------------------------------------------------


@dataclass
class HandlerRuntime:
    """What the service's handlers read from its runtime: the settings and the clock."""

    settings: NotificationsSettings
    clock: Clock


def admin(sub: str = "test") -> Principal:
    """The admin a domain call acts for (audited as ``sub``)."""
    return Principal(sub=sub, roles=frozenset({Role.ADMIN}), sites=frozenset())


# A Chișinău mid-morning (UTC+2 in winter): outside the default quiet hours.
MORNING = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def make_settings(
    database_url: str, kafka_bootstrap: str, **overrides: Any
) -> NotificationsSettings:
    """Test settings: generous rate limits, short backoff, no real transports."""
    values: dict[str, Any] = {
        "service": "notifications",
        "database_url": database_url,
        "rate_limits": {c: TokenBucket(per_second=1000, burst=1000) for c in Channel},
        "backoff_initial_seconds": 10.0,
        "backoff_max_seconds": 600.0,
        "max_attempts": 3,
        "contact_wait_seconds": 600.0,
        "site_timezones": {"MDA-PAL": "Europe/Chisinau", "MDA-CHI": "Europe/Chisinau"},
        "common": CommonSettings(kafka_bootstrap=kafka_bootstrap),
    }
    values.update(overrides)
    return NotificationsSettings(**values)


# --- events ---------------------------------------------------------------------------------


def registered(
    household_id: UUID | None = None,
    *,
    site_id: str = "MDA-PAL",
    case_number: str = "MDA-PAL-000123",
    language: str = "uk",
    contact_consent: bool = True,
) -> HouseholdRegistered:
    return household_profile(
        household_id,
        site_id=site_id,
        case_number=case_number,
        members=1,
        location=Location(admin1="MD01", admin2="MD0101"),
        language=language,
        consent=ConsentFlags(data_processing=True, referral_sharing=True, contact=contact_consent),
    )


def contact(
    household_id: UUID,
    *,
    phone: str | None = "+37360123412",
    language: str = "uk",
    consent: bool = True,
    site_id: str = "MDA-PAL",
    case_number: str = "MDA-PAL-000123",
) -> HouseholdContact:
    return HouseholdContact(
        household_id=household_id,
        case_number=case_number,
        site_id=site_id,
        phone=phone,
        preferred_language=language,
        contact_consent=consent,
    )


def distribution(household_id: UUID, *, site_id: str = "MDA-PAL") -> DistributionRecorded:
    return DistributionRecorded(
        distribution_id=uuid4(),
        household_id=household_id,
        warehouse_id=uuid4(),
        site_id=site_id,
        lines=(
            DistributedLine(sku="HYG-KIT", category="hygiene", quantity=2),
            DistributedLine(sku="FOOD-PARCEL", category="food", quantity=1),
        ),
    )


def referral_sent(
    household_id: UUID, *, service_type: str = "medical", sensitive: bool = False
) -> ReferralSent:
    return ReferralSent(
        referral_id=uuid4(),
        household_id=household_id,
        service_type=service_type,
        urgency="urgent",
        status="sent",
        provider_id=uuid4(),
        due_at=datetime(2026, 1, 16, 9, 0, tzinfo=UTC),
        site_id="MDA-PAL",
        sensitive=sensitive,
        provider_name="Clinica Sfânta Treime",
        provider_address="str. Alba Iulia 75, Chișinău",
        provider_opening_hours="Mon-Fri 08:00-17:00",
        provider_phone="+37322000000",
    )


def shelter(household_id: UUID, *, site_id: str = "MDA-CHI") -> ShelterAllocated:
    return ShelterAllocated(
        allocation_id=uuid4(),
        household_id=household_id,
        shelter_id=uuid4(),
        site_id=site_id,
        beds=4,
        check_in=date(2026, 1, 15),
        expected_check_out=date(2026, 2, 15),
    )


def overdue(household_id: UUID, *, provider_id: UUID | None = None) -> ReferralOverdue:
    return ReferralOverdue(
        referral_id=uuid4(),
        household_id=household_id,
        service_type="legal",
        urgency="normal",
        status="sent",
        provider_id=provider_id or uuid4(),
        due_at=datetime(2026, 1, 14, 9, 0, tzinfo=UTC),
    )


def referral_accepted(household_id: UUID) -> ReferralAccepted:
    return ReferralAccepted(
        referral_id=uuid4(),
        household_id=household_id,
        service_type="legal",
        urgency="normal",
        status="accepted",
        provider_id=uuid4(),
    )


def escalated(
    household_id: UUID,
    *,
    tier: int,
    provider_id: UUID | None = None,
    audience: Any = None,
    caseworker_sub: str | None = None,
    reason_code: Any = None,
) -> ReferralEscalated:
    return ReferralEscalated(
        referral_id=uuid4(),
        household_id=household_id,
        service_type="medical",
        urgency="urgent",
        status="sent",
        provider_id=provider_id or uuid4(),
        due_at=datetime(2026, 1, 14, 9, 0, tzinfo=UTC),
        tier=tier,
        audience=audience,
        caseworker_sub=caseworker_sub,
        reason_code=reason_code,
    )


def stock_low(site_id: str = "MDA-CHI") -> StockLow:
    return StockLow(
        warehouse_id=uuid4(),
        site_id=site_id,
        sku="HYG-KIT",
        category="hygiene",
        balance=12,
        reorder_level=50,
        days_of_cover=1.5,
    )


def duplicate_review(household_id: UUID, site_id: str = "MDA-PAL") -> DuplicateReviewRequested:
    return DuplicateReviewRequested(
        review_id=uuid4(),
        household_id=household_id,
        site_id=site_id,
        score=0.91,
        reasons=("document_match", "name_similarity"),
    )


def erased(household_id: UUID, site_id: str = "MDA-PAL") -> HouseholdErased:
    return HouseholdErased(household_id=household_id, site_id=site_id)


def wrap(payload: EventPayload, source: str | None = None) -> Envelope[Any]:
    return envelope(payload, source=source)


_offsets = iter(range(10**9))


def record_of(envelope: Envelope[Any], key: str) -> ConsumerRecord[bytes, bytes]:
    """The Kafka record the relay would publish for ``envelope``."""
    return consumer_record(envelope, key=key, offset=next(_offsets))


def tombstone_of(topic: str, key: str) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(None, topic=topic, key=key, offset=next(_offsets))


# --- a local HTTP receiver: SMS gateway or webhook endpoint --------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records every request. ``statuses`` scripts answers (then 200); a gateway-like
    receiver delivers each idempotency key once; ``hold`` keeps requests unanswered."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    delivered: list[Received] = field(default_factory=list)
    hold: asyncio.Event | None = None
    delay_seconds: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keys(self) -> list[str]:
        return [r.headers.get("idempotency-key", "") for r in self.requests]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        received = Received(scope["path"], headers, body)
        self.requests.append(received)
        key = headers.get("idempotency-key")
        first = key is None or key not in {r.headers.get("idempotency-key") for r in self.delivered}
        status = self.statuses.pop(0) if self.statuses else (202 if first else 200)
        if status < 300 and first:
            self.delivered.append(received)
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")]
                + ([(b"location", b"http://169.254.169.254/")] if 300 <= status < 400 else []),
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def start(self) -> HttpReceiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=10)


# --- a local SMTP server --------------------------------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        self.tls.append(session.ssl is not None)
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free loopback port, optionally requiring STARTTLS."""

    def __init__(self, *, starttls: bool = False) -> None:
        self.collector = _Collect()
        self.cert_dir = tempfile.TemporaryDirectory()
        self.ca_file: str | None = None
        context = None
        if starttls:
            cert, key = _self_signed(Path(self.cert_dir.name))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.ca_file = str(cert)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            self.collector,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=starttls,
            server_hostname="localhost",
        )

    @property
    def messages(self) -> list[EmailMessage]:
        return self.collector.messages

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()
        self.cert_dir.cleanup()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for localhost and 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- Kafka ----------------------------------------------------------------------------------


def today() -> date:
    return datetime.now(UTC).date()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


class RecordingTransport:
    """An in-memory channel: records messages; ``failures`` scripts errors (then success)."""

    def __init__(self, failures: Sequence[ChannelError] = ()) -> None:
        self.sent: list[OutgoingMessage] = []
        self.failures = list(failures)

    async def send(self, message: OutgoingMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)

    async def aclose(self) -> None:
        return None

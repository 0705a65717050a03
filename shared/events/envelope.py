"""The event envelope: CloudEvents 1.0 attributes carried in the Kafka binary binding.

On the wire an event is a Kafka record whose value is the JSON payload and whose headers
are the CloudEvents attributes prefixed with ``ce_`` (the CloudEvents Kafka protocol
binding, binary mode). Haven adds three extension attributes: ``correlationid``,
``causationid`` and ``actor`` (CloudEvents extension names allow no underscores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import uuid6
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
HEADER_PREFIX = "ce_"
EXTENSIONS = ("correlationid", "causationid", "actor")
# FastStream reads this header to fill its own correlation id.
FASTSTREAM_CORRELATION_HEADER = "correlation_id"
TRACE_HEADERS = ("traceparent", "tracestate")


class EventPayload(BaseModel):
    """Base of every event's data. Subclasses name their type and schema version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    @classmethod
    def dataschema(cls) -> str:
        return f"urn:haven:event:{cls.event_type}:v{cls.schema_version}"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__


P = TypeVar("P", bound=EventPayload)


class MalformedEvent(ValueError):
    """A Kafka record that is not a valid Haven event (it goes to the dead-letter topic)."""


def new_event_id() -> UUID:
    """A time-ordered UUIDv7, so event ids sort by creation time."""
    return UUID(str(uuid6.uuid7()))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    """One event: CloudEvents context attributes plus Haven's extensions and the payload."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(default_factory=new_event_id)
    source: str
    type: str
    specversion: str = SPEC_VERSION
    time: datetime = Field(default_factory=utcnow)
    subject: str | None = None
    datacontenttype: str = CONTENT_TYPE
    dataschema: str
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    data: P

    @classmethod
    def wrap(
        cls,
        payload: P,
        *,
        source: str,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        actor: str | None = None,
    ) -> Envelope[P]:
        """Build the envelope of a new event from its payload."""
        return Envelope[P](
            source=source,
            type=payload.event_type,
            dataschema=payload.dataschema(),
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
            actor=actor,
            data=payload,
        )

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The ``ce_`` headers of the binary binding (payload goes in the value)."""
        attributes: dict[str, str | None] = {
            "specversion": self.specversion,
            "id": str(self.id),
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "subject": self.subject,
            "dataschema": self.dataschema,
            "correlationid": self.correlation_id,
            "causationid": self.causation_id,
            "actor": self.actor,
        }
        headers = [
            (HEADER_PREFIX + name, value.encode())
            for name, value in attributes.items()
            if value is not None
        ]
        headers.append(("content-type", self.datacontenttype.encode()))
        if self.correlation_id:
            headers.append((FASTSTREAM_CORRELATION_HEADER, self.correlation_id.encode()))
        return headers

    def kafka_value(self) -> bytes:
        return self.data.model_dump_json().encode()


def headers_to_dict(headers: Sequence[tuple[str, bytes]] | Mapping[str, Any]) -> dict[str, str]:
    """Kafka headers as a str → str dict (undecodable values are dropped)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for name, raw in items:
        if isinstance(raw, bytes | bytearray):
            try:
                result[name] = bytes(raw).decode()
            except UnicodeDecodeError:
                continue
        elif raw is not None:
            result[name] = str(raw)
    return result


def decode_envelope(
    headers: Mapping[str, str], value: bytes | None, payload_model: type[P]
) -> Envelope[P]:
    """Rebuild an envelope from a Kafka record; raise MalformedEvent when it is not valid."""
    attrs = {
        name[len(HEADER_PREFIX) :]: v
        for name, v in headers.items()
        if name.startswith(HEADER_PREFIX)
    }
    if attrs.get("specversion") != SPEC_VERSION:
        raise MalformedEvent(f"unsupported or missing ce_specversion: {attrs.get('specversion')!r}")
    if value is None:
        raise MalformedEvent("record has no value")
    try:
        data = payload_model.model_validate_json(value)
        return Envelope[P](
            id=attrs.get("id"),
            source=attrs.get("source"),
            type=attrs.get("type"),
            time=attrs.get("time"),
            subject=attrs.get("subject"),
            datacontenttype=headers.get("content-type", CONTENT_TYPE),
            dataschema=attrs.get("dataschema") or payload_model.dataschema(),
            correlation_id=attrs.get("correlationid"),
            causation_id=attrs.get("causationid"),
            actor=attrs.get("actor"),
            data=data,
        )
    except ValidationError as exc:
        raise MalformedEvent(_summarise(exc)) from exc


def _summarise(exc: ValidationError) -> str:
    """Field paths and messages only: never the input values (they may be personal data)."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    ]
    return "; ".join(parts)[:1000]

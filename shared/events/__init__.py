"""Events: the envelope, the payloads and the topic catalog."""

from shared.events.catalog import CATALOG, Catalog, Topic
from shared.events.envelope import Envelope, EventPayload, MalformedEvent, decode_envelope

__all__ = [
    "CATALOG",
    "Catalog",
    "Envelope",
    "EventPayload",
    "MalformedEvent",
    "Topic",
    "decode_envelope",
]

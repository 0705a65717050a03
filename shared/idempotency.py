"""Replaying the answer to a re-sent request: one vocabulary for every service.

A client fixes a key when it creates a request (``Idempotency-Key`` header, or a
``client_ref`` in the body for offline devices) and may send it again after a lost
answer. The service keeps the first outcome under the key with the request's fingerprint:
the same key with the same request gets that outcome again; with another request it is
refused (:class:`RequestKeyReused`). Domain code answers with an :class:`Outcome`, never an
HTTP status; the route maps ``Outcome.kind`` to a status in one place (:func:`status_of`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from shared.problems import Conflict, Problem

T = TypeVar("T")


class OutcomeKind(StrEnum):
    """What became of a request; stored with the key so a re-send gets the same answer."""

    CREATED = "created"  # the request made something new
    ERASED = "erased"  # what it made has been erased since: the key answers Gone


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A command's answer: what happened, its body, and whether it is a replay."""

    kind: OutcomeKind
    body: T
    replayed: bool = False


class RequestKeyReused(Conflict):
    type_slug, title = "request-key-reused", "Key already used for another request"


class OutcomeGone(Problem):
    type_slug, title, status = "gone", "Gone", 410


def fingerprint(body: BaseModel | Any) -> str:
    """SHA-256 of a request body's canonical JSON: equal bodies, equal fingerprints."""
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


HTTP_STATUS: dict[OutcomeKind, int] = {
    OutcomeKind.CREATED: 201,
    OutcomeKind.ERASED: 410,
}


def status_of(outcome: Outcome[Any]) -> int:
    """The HTTP status of an outcome: the one place where the two meet."""
    return HTTP_STATUS[outcome.kind]

"""Keyset pagination with opaque cursors: base64 of the last row's sort key.

Lists take ``cursor`` and a bounded ``limit``; a cursor this API did not hand out is a 400
``invalid-cursor``, the same in every service.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from shared.problems import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(BadRequest):
    type_slug, title = "invalid-cursor", "Invalid cursor"


def encode_cursor(key: Sequence[Any]) -> str:
    """The cursor that resumes after a row with this sort key."""
    return base64.urlsafe_b64encode(json.dumps(list(key), default=str).encode()).decode()


def decode_cursor(cursor: str, *, types: tuple[type, ...]) -> list[Any]:
    """The sort key inside ``cursor``, one value of each of ``types``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not one this service returned.") from exc
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True)
        )
    ):
        raise InvalidCursor("The cursor is not one this service returned.")
    return key


def encode_id_cursor(last_id: UUID) -> str:
    """A cursor over rows sorted by a time-ordered id."""
    return encode_cursor([str(last_id)])


def decode_id_cursor(cursor: str) -> UUID:
    (raw,) = decode_cursor(cursor, types=(str,))
    try:
        return UUID(raw)
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this service returned.") from exc
